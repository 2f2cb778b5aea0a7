#!/usr/bin/env python3
"""Appends a table view to EtcdSecure.Format.ps1xml: add-view.py Type Label=Property|{script} ..."""
import sys, html
path = 'src/EtcdSecure.PowerShell/EtcdSecure.Format.ps1xml'
typ, cols = sys.argv[1], sys.argv[2:]
heads, items = [], []
for c in cols:
    label, _, prop = c.partition('=')
    prop = prop or label
    heads.append(f'          <TableColumnHeader><Label>{label}</Label></TableColumnHeader>')
    if prop.startswith('{'):
        items.append(f'          <TableColumnItem><ScriptBlock>{html.escape(prop[1:-1], quote=False)}</ScriptBlock></TableColumnItem>')
    else:
        items.append(f'          <TableColumnItem><PropertyName>{prop}</PropertyName></TableColumnItem>')
view = f'''    <View>
      <Name>EtcdSecure.{typ}</Name>
      <ViewSelectedBy><TypeName>EtcdSecure.{typ}</TypeName></ViewSelectedBy>
      <TableControl>
        <TableHeaders>
{chr(10).join(heads)}
        </TableHeaders>
        <TableRowEntries><TableRowEntry><TableColumnItems>
{chr(10).join(items)}
        </TableColumnItems></TableRowEntry></TableRowEntries>
      </TableControl>
    </View>
'''
s = open(path).read()
if f'<Name>EtcdSecure.{typ}</Name>' in s:
    sys.exit(f'{typ} already has a view')
s = s.replace('  </ViewDefinitions>', view + '  </ViewDefinitions>')
open(path, 'w').write(s)
