using System.IO.Compression;
using System.Text;
using ScratchGpt.Loading;
using ScratchGpt.Loading.Torch;
using ScratchGpt.Model;

namespace ScratchGpt.Tests;

[Collection("console")]
public class TorchCheckpointTests
{
    [Fact]
    public void Real_torch_save_file_gives_exactly_the_safetensors_models_logits()
    {
        using var fromBin = Gpt2Model.Load(Fixtures.Model("tiny-gpt2-bin"),
            new ModelLoadOptions { Device = "cpu", TokenizerDirectory = Fixtures.TokenizerDir });
        int[] ids = Fixtures.Tokenizer.Encode("To be, or not to be: that is the question.");
        Assert.Equal(Fixtures.Load("tiny-gpt2").Forward(ids).Logits, fromBin.Forward(ids).Logits);
    }

    [Fact]
    public void Real_torch_save_file_lists_its_tensors_with_shapes_and_dtypes()
    {
        using var f = TorchCheckpointFile.Open(Path.Combine(Fixtures.Model("tiny-gpt2-bin"), "pytorch_model.bin"));
        Assert.Equal([50257L, 64], f.Tensors["transformer.wte.weight"].Shape);
        Assert.Equal([64L, 192], f.Tensors["transformer.h.0.attn.c_attn.weight"].Shape);
        Assert.Equal(SafetensorsDType.F32, f.Tensors["lm_head.weight"].DType);
    }

    // ---- hostile pickles: each must be refused by name, and nothing may run ------------------------

    private static string Marker => Path.Combine(Path.GetTempPath(), "scratchgpt-pickle-ran");

    public static TheoryData<string, byte[], string> HostilePickles()
    {
        byte[] P(params object[] parts) =>
            parts.SelectMany(p =>
                p switch { string s => Encoding.Latin1.GetBytes(s), byte[] b => b, byte x => new[] { x },
            _ => throw new ArgumentException() }).ToArray();
        string cmd = "touch " + Marker;
        return new TheoryData<string, byte[], string>
        {
            // GLOBAL os.system, called by REDUCE: the classic payload.
            { "os.system", P("\x80\x02", "cos\nsystem\n", "(X", BitConverter.GetBytes(cmd.Length), cmd, "tR."),
                "'os.system'" },
            { "posix.system", P("\x80\x02", "cposix\nsystem\n", "(X", BitConverter.GetBytes(cmd.Length), cmd, "tR."),
            "'posix.system'" },
            { "builtins.eval", P("\x80\x02", "cbuiltins\neval\n", "(X\x04\0\0\0", "1+1", " tR."), "'builtins.eval'" },
            // Protocol 4 STACK_GLOBAL names the callable with strings on the stack.
            { "stack global exec",
                P("\x80\x04", (byte)0x8c, (byte)8, "builtins", (byte)0x8c, (byte)4, "exec", (byte)0x93,
                "(X\x04\0\0\0pass", "tR."), "'builtins.exec'" },
            // An allowed module with a disallowed attribute.
            { "torch.load", P("\x80\x02", "ctorch\nload\n", ")R."), "'torch.load'" },
            { "subprocess", P("\x80\x02", "csubprocess\ncheck_output\n", ")R."), "'subprocess.check_output'" },
            // Instances of classes, and object state, are not part of a state dict.
            { "newobj", P("\x80\x02", "ccollections\nOrderedDict\n", ")", (byte)0x81, "."), "NEWOBJ" },
            { "build on a tensor rebuild",
            P("\x80\x02", "ccollections\nOrderedDict\n", ")R", "ccollections\nOrderedDict\n", "b."), "BUILD" },
            { "truncated", P("\x80\x02", "ccollections\nOrderedDict\n", ")R", "X\xff\xff\xff\x7f", "abc"),
            "past the end" }, { "no stop", P("\x80\x02", "ccollections\nOrderedDict\n", ")R"), "STOP" },
            { "not a state dict", P("\x80\x02", "K\x05."), "not a state dict" },
            { "memo before store", P("\x80\x02", "h\x07."), "memo entry 7" },
        };
    }

    [Theory]
    [MemberData(nameof(HostilePickles))]
    public void Hostile_pickles_are_refused_and_never_run(string what, byte[] pickle, string expectedInMessage)
    {
        File.Delete(Marker);
        string dir = Directory.CreateTempSubdirectory("sgpt-pkl").FullName;
        try
        {
            string bin = Path.Combine(dir, "pytorch_model.bin");
            using (var zip = ZipFile.Open(bin, ZipArchiveMode.Create))
            using (var s = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open())
                s.Write(pickle);
            var e = Assert.Throws<ModelLoadException>(() => TorchCheckpointFile.Open(bin));
            Assert.Contains(expectedInMessage, e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.False(File.Exists(Marker), $"{what}: the payload ran");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Hostile_checkpoint_in_a_model_folder_gives_a_one_line_cli_error()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-pklcli").FullName;
        try
        {
            File.Copy(Path.Combine(Fixtures.Model("tiny-gpt2-bin"), "config.json"), Path.Combine(dir, "config.json"));
            using (var zip = ZipFile.Open(Path.Combine(dir, "pytorch_model.bin"), ZipArchiveMode.Create))
            using (var s = zip.CreateEntry("archive/data.pkl").Open())
                s.Write(Encoding.Latin1.GetBytes("\x80\x02" + "cos\nsystem\n(X\x04\0\0\0true tR."));
            var (code, _, err) = CliTests.RunCli("generate", "--model", dir, "--tokenizer", Fixtures.TokenizerDir,
                "--prompt", "Hi", "--max-new-tokens", "2", "--device", "cpu");
            Assert.Equal(1, code);
            Assert.True(err.Contains("'os.system'"), err);
            Assert.StartsWith("error:", err.Split('\n').First(l => l.StartsWith("error")));
        }
        finally { Directory.Delete(dir, true); }
    }

    // ---- the legacy (pre-zip) container ------------------------------------------------------------

    [Fact]
    public void Legacy_torch_save_file_with_a_strided_view_is_read()
    {
        // State dict {"w": storage[0..6) viewed as the transpose of a 2×3 matrix: shape [3, 2], stride [1, 3]}.
        var b = new List<byte>();
        void Add(string latin1) => b.AddRange(Encoding.Latin1.GetBytes(latin1));
        byte[] magic = System.Numerics.BigInteger.Parse("1950a86a20f9469cfc6c",
            System.Globalization.NumberStyles.HexNumber).ToByteArray();
        Add("\x80\x02\x8a"); b.Add((byte)magic.Length); b.AddRange(magic); Add(".");
        Add("\x80\x02M\xe9\x03.");                                     // protocol version 1001
        Add("\x80\x02}.");                                             // system info (an empty dict here)
        Add("\x80\x02" + "ccollections\nOrderedDict\n)R");
        Add("X\x01\0\0\0w");
        Add("ctorch._utils\n_rebuild_tensor_v2\n(");
        Add("(X\x07\0\0\0storagectorch\nFloatStorage\nX\x01\0\0\0" + "7" + "X\x03\0\0\0cpuK\x06tQ");
        Add("K\0K\x03K\x02\x86K\x01K\x03\x86\x89" + "ccollections\nOrderedDict\n)RtR");
        Add("s.");
        Add("\x80\x02]X\x01\0\0\0" + "7a.");                              // storage keys: ["7"]
        b.AddRange(BitConverter.GetBytes(6L));
        foreach (float v in new float[] { 1, 2, 3, 4, 5, 6 }) b.AddRange(BitConverter.GetBytes(v));
        string dir = Directory.CreateTempSubdirectory("sgpt-legacy").FullName;
        try
        {
            string path = Path.Combine(dir, "pytorch_model.bin");
            File.WriteAllBytes(path, b.ToArray());
            using var f = TorchCheckpointFile.Open(path);
            var t = f.Tensors["w"];
            Assert.Equal([3L, 2], t.Shape);
            var values = new float[6];
            f.ReadFloat32(t, values);
            Assert.Equal([1f, 4, 2, 5, 3, 6], values);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Convert_writes_a_safetensors_folder_with_the_same_logits()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-conv").FullName;
        try
        {
            var (code, _, err) = CliTests.RunCli("convert", "--model", Fixtures.Model("tiny-gpt2-bin"), "--to",
                "safetensors", "--out", dir);
            Assert.True(code == 0, err);
            Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
            using var m = Gpt2Model.Load(dir,
                new ModelLoadOptions { Device = "cpu", TokenizerDirectory = Fixtures.TokenizerDir });
            int[] ids = [464, 2068, 7586];
            Assert.Equal(Fixtures.Load("tiny-gpt2").Forward(ids).Logits, m.Forward(ids).Logits);
        }
        finally { Directory.Delete(dir, true); }
    }
}
