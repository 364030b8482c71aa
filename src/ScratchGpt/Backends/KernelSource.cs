namespace ScratchGpt.Backends;

/// <summary>Reads the device code in kernels/ (copied beside the program) and prepends a backend's prelude.</summary>
public static class KernelSource
{
    public static readonly string[] Files = ["weights.cl", "elementwise.cl", "layernorm.cl", "matmul.cl", "attention.cl", "argmax.cl", "loss.cl", "optimizer.cl"];

    /// <summary>kernels/ beside the program, or the folder in SCRATCHGPT_KERNELS (to try edited kernels without rebuilding).</summary>
    public static string Directory =>
        Environment.GetEnvironmentVariable("SCRATCHGPT_KERNELS") is { Length: > 0 } dir ? dir : Path.Combine(AppContext.BaseDirectory, "kernels");

    public static string Load(string prelude)
    {
        string Read(string f)
        {
            string path = Path.Combine(Directory, f);
            if (!File.Exists(path)) throw new BackendException($"kernel source {path} not found (kernels/ must ship beside the program)");
            return File.ReadAllText(path);
        }
        return Read(prelude) + "\n" + string.Join("\n", Files.Select(f => $"// ---- {f}\n" + Read(f)));
    }
}
