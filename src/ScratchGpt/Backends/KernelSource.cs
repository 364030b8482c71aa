namespace ScratchGpt.Backends;

/// <summary>Reads the device code in kernels/ (copied beside the program) and prepends a backend's prelude.</summary>
public static class KernelSource
{
    public static readonly string[] Files = ["elementwise.cl", "layernorm.cl", "matmul.cl", "attention.cl", "argmax.cl"];

    public static string Directory => Path.Combine(AppContext.BaseDirectory, "kernels");

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
