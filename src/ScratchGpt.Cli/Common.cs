using System.CommandLine;
using ScratchGpt.Backends;
using ScratchGpt.Decoding;
using ScratchGpt.Loading;
using ScratchGpt.Model;

namespace ScratchGpt.Cli;

/// <summary>Options every model command shares, and the one place errors become a one-line message.</summary>
public static class Common
{
    public static readonly Option<string?> Model = new("--model")
    {
        Description = "GPT-2 folder (config.json + model.safetensors or pytorch_model.bin) or a Hub model id (gpt2, " +
            "org/name); default: weights/default",
    };
    public static readonly Option<string?> CacheDir = new("--cache-dir")
    {
        Description = "Hub cache folder (default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)",
    };
    public static readonly Option<string> Revision = new("--revision")
    {
        Description = "Hub branch, tag or commit",
        DefaultValueFactory = _ => "main",
    };
    public static readonly Option<bool> Offline = new("--offline")
    {
        Description = "use only the Hub cache (also HF_HUB_OFFLINE=1)",
    };
    public static readonly Option<string?> Tokenizer = new("--tokenizer")
    {
        Description = "folder with vocab.json + merges.txt or tokenizer.json (default: the model's, else the bundled " +
            "GPT-2 files)",
    };
    public static readonly Option<string> Device = new("--device")
    {
        Description = "auto | cpu | opencl[:N] | cuda[:N]",
        DefaultValueFactory = _ => "auto",
    };
    public static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "print settings, and stack traces on errors",
    };
    public static readonly Option<string> Prompt = new("--prompt")
    {
        Description = "the input text",
        DefaultValueFactory = _ => "",
    };
    public static readonly Option<bool> Json = new("--json") { Description = "print one JSON object instead of text" };
    public static readonly Option<string?> Quantize = new("--quantize")
    {
        Description = "q8_0 or q4_0: quantize the weight matrices at load (llama.cpp's Q8_0 / Q4_0, blocks of 32 " +
            "signed bytes or four-bit codes with one float16 scale)",
    };

    public static readonly Option<string> KvCache = new("--kv-cache")
    {
        Description = "f32 or f16: how the KV cache stores keys and values (f16, llama.cpp's default: half the bytes " +
            "a decode step's attention reads; cpu and reference devices)",
        DefaultValueFactory = _ => "f32",
    };

    public static void AddModelOptions(Command c)
    {
        c.Options.Add(Model);
        c.Options.Add(Tokenizer);
        c.Options.Add(Device);
        c.Options.Add(Quantize);
        c.Options.Add(KvCache);
        c.Options.Add(Verbose);
        AddHubOptions(c);
    }

    public static void AddHubOptions(Command c)
    {
        c.Options.Add(CacheDir); c.Options.Add(Revision); c.Options.Add(Offline);
    }

    public static string ModelDir(ParseResult p) =>
        ResolveModel(p, p.GetValue(Model)) ?? ModelFolder.DefaultModelDirectory;

    /// <summary>A folder as given, or a Hub model id resolved to its cached snapshot (downloading what is
    /// missing).</summary>
    public static string? ResolveModel(ParseResult p, string? value)
    {
        if (value is null || Directory.Exists(value)) return value;
        if (LooksLikePath(value) || !Loading.Hub.HubModelId.IsValid(value))
            throw new ModelLoadException($"{value}: model folder not found");
        var settings = Loading.Hub.HubSettings.FromEnvironment(p.GetValue(CacheDir), p.GetValue(Offline));
        using var hub = new Loading.Hub.HubDownloader(settings);
        try
        {
            return DownloadCommand.RunWithProgress(hub, value, p.GetValue(Revision) ?? "main", CancellationToken.None);
        }
        catch (Loading.Hub.HubException e)
        {
            throw new ModelLoadException($"no folder '{value}'; as a Hub id: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    /// <summary>A value that can only be meant as a path (absolute, relative with ./ or ../, ~, a backslash, more
    /// than one separator, or an org/ part that is a local folder): never sent to the Hub.</summary>
    public static bool LooksLikePath(string value) =>
        value.StartsWith('.') || value.StartsWith('~') || Path.IsPathRooted(value) || value.Contains('\\')
        || value.Count(c => c == '/') > 1 || value.EndsWith('/')
        || (value.Contains('/') && Directory.Exists(value[..value.IndexOf('/')]));

    /// <summary>Loads the model on the chosen device. Quiet but for notes a user must see (a borrowed tokenizer);
    /// with --verbose, device selection and the device it got (on stderr, so --json stays clean).</summary>
    public static Gpt2Model LoadModel(ParseResult p, Func<Backends.IBackend, Backends.IBackend>? wrapBackend = null)
    {
        bool verbose = p.GetValue(Verbose);
        Backends.WeightPrecision? precision = p.GetValue(Quantize) switch
        {
            null => null,
            "q8_0" => Backends.WeightPrecision.Q8_0,
            "q4_0" => Backends.WeightPrecision.Q4_0,
            var q => throw new ArgumentException($"--quantize must be q8_0 or q4_0, got '{q}'"),
        };
        var kvCache = p.GetValue(KvCache) switch
        {
            "f32" => Backends.KvCachePrecision.Float32,
            "f16" => Backends.KvCachePrecision.Float16,
            var k => throw new ArgumentException($"--kv-cache must be f32 or f16, got '{k}'"),
        };
        var model = Gpt2Model.Load(ModelDir(p), new ModelLoadOptions
        {
            Device = p.GetValue(Device)!,
            Precision = precision,
            KvCache = kvCache,
            TokenizerDirectory = p.GetValue(Tokenizer),
            Log = verbose ? m => Console.Error.WriteLine(m) : null,
            Note = m => Console.Error.WriteLine("note: " + m),
            WrapBackend = wrapBackend,
        });
        if (verbose) Console.Error.WriteLine($"Device: {model.Backend.Kind} — {model.Backend.DeviceName}");
        return model;
    }

    /// <summary>Encodes the prompt; an empty prompt starts from the BOS token, as generate() does.</summary>
    public static int[] EncodePrompt(Gpt2Model model, string prompt)
    {
        int[] ids = model.Tokenizer!.Encode(prompt);
        if (ids.Length > 0) return ids;
        Console.Error.WriteLine($"note: empty prompt: starting from the BOS token ({model.Config.BosTokenId}), as " +
            "transformers does");
        return [model.Config.BosTokenId];
    }

    public static void CheckLength(Gpt2Model model, int length)
    {
        if (length > model.Config.NPositions)
            throw new ArgumentException($"--prompt: {length} tokens is more than the model's n_positions " +
                $"({model.Config.NPositions})");
    }

    /// <summary>Runs a command body; known failures print "error: …" on one line and exit 1.</summary>
    public static async Task<int> Run(ParseResult p, Func<CancellationToken, Task<int>> body, CancellationToken ct)
    {
        try { return await body(ct); }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Console.Error.WriteLine("stopped.");
            return 130;
        }
        catch (Exception e) when (e is ModelLoadException or ArgumentException or Loading.Hub.HubException
                                      or BackendException or IOException or UnauthorizedAccessException
                                      or InvalidOperationException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message.ReplaceLineEndings(" ")}");
            if (p.GetValue(Verbose)) Console.Error.WriteLine(e);
            return 1;
        }
    }

    public static void Action(Command c, Func<ParseResult, CancellationToken, Task<int>> body) =>
        c.SetAction((p, ct) => Run(p, t => body(p, t), ct));

    public static void Action(Command c, Func<ParseResult, int> body) =>
        c.SetAction((p, ct) => Run(p, _ => Task.FromResult(body(p)), ct));
}
