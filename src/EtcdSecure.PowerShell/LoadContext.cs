using System;
using System.IO;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using System.Threading;

namespace EtcdSecure.PowerShell;

/// <summary>
/// Holds EtcdSecure.Engine and every third-party assembly it needs (BouncyCastle, gRPC, Protobuf, ...),
/// all loaded from Dependencies/. Another module in the same session can load other versions of the
/// same packages into the default context without either module breaking the other.
/// </summary>
internal sealed class EtcdSecureLoadContext : AssemblyLoadContext
{
    private readonly string _dependencyDirectory;

    public EtcdSecureLoadContext(string dependencyDirectory)
        : base("EtcdSecure", isCollectible: false)
    {
        _dependencyDirectory = dependencyDirectory;
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        string path = Path.Combine(_dependencyDirectory, assemblyName.Name + ".dll");
        // Anything not shipped in Dependencies/ (the framework, System.Management.Automation) comes from the
        // default context, so types such as X509Certificate2 are the same types on both sides.
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }
}

/// <summary>Wires the load context up when the module is imported and unhooks it on Remove-Module.</summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    internal const string EngineAssemblyName = "EtcdSecure.Engine";

    private static readonly string DependencyDirectory =
        Path.Combine(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!, "Dependencies");

    private static readonly Lazy<EtcdSecureLoadContext> Context = new(() => new EtcdSecureLoadContext(DependencyDirectory));

    public void OnImport()
    {
        AssemblyLoadContext.Default.Resolving += ResolveEngine;
        // On a pool thread: neither loading the engine for it nor the work itself is part of the import.
        ThreadPool.UnsafeQueueUserWorkItem(static _ => TryWarmUpTls(), null);
    }

    private static void TryWarmUpTls()
    {
        try
        {
            WarmUpTls();
        }
#pragma warning disable CA1031 // an exception on a pool thread ends the whole pwsh process
        catch (Exception)
        {
            // Only a head start, whatever failed: the work itself, or loading the engine for it (a broken install,
            // which the first cmdlet that needs the engine reports as a load error). Here it would end the session.
        }
#pragma warning restore CA1031
    }

    public void OnRemove(PSModuleInfo psModuleInfo) => AssemblyLoadContext.Default.Resolving -= ResolveEngine;

    // Its own method: the engine is loaded when this is compiled, on the thread that runs it.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WarmUpTls() => Engine.Tls.TlsWarmUp.RunOnce();

    // Only the engine is redirected: its own references are then resolved by EtcdSecureLoadContext.Load. When the
    // engine is missing from Dependencies/, that context hands the request back to the default one, which would
    // raise this event again without end (a stack overflow that kills the process); returning null instead gives
    // PowerShell's ordinary "could not load file or assembly" error.
    private static Assembly? ResolveEngine(AssemblyLoadContext defaultContext, AssemblyName name) =>
        string.Equals(name.Name, EngineAssemblyName, StringComparison.Ordinal)
        && File.Exists(Path.Combine(DependencyDirectory, EngineAssemblyName + ".dll"))
            ? Context.Value.LoadFromAssemblyName(name)
            : null;
}
