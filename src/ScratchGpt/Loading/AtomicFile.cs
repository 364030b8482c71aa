namespace ScratchGpt.Loading;

/// <summary>Writes a file under a temporary name beside the target, then renames it into place.</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string full = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new IOException($"{path}: directory {dir} does not exist");
        string tmp = System.IO.Path.Combine(dir,
            $".{System.IO.Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Copies a file through a temporary name; copying a file onto itself does nothing.</summary>
    public static void Copy(string source, string destination)
    {
        if (System.IO.Path.GetFullPath(source) == System.IO.Path.GetFullPath(destination)) return;
        Write(destination, s => { using var f = File.OpenRead(source); f.CopyTo(s); });
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var b = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(b); });
}
