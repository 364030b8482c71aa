using System.Runtime.InteropServices;

namespace ScratchGpt.Cli;

/// <summary>The one libc call the CLI needs beyond .NET's PosixSignalRegistration.</summary>
internal static partial class Signals
{
    public const int SigInt = 2;

    /// <summary>signal(sig, SIG_DFL): undoes an inherited SIG_IGN, so .NET's handler can be installed.</summary>
    public static void RestoreDefault(int signal)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) SetSignal(signal, IntPtr.Zero);
    }

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial IntPtr SetSignal(int signal, IntPtr handler);
}
