using ScratchGpt.Model;
using System.Text;
using ScratchGpt.Loading;

namespace ScratchGpt.Tests;

/// <summary>The header validation rules: each malformed file is refused with the loader's exception and a clear
/// message.</summary>
public class SafetensorsTests
{
    private static string Write(string header, int dataBytes, ulong? lengthOverride = null)
    {
        string path = Path.GetTempFileName();
        var h = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes(lengthOverride ?? (ulong)h.Length));
        fs.Write(h);
        fs.Write(new byte[dataBytes]);
        return path;
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, null, null)]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, null, "truncated")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 99999999UL, "past the end")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 200000000UL, "limit")]
    [InlineData("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, null, "unknown dtype 'F33'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, null, "needs 12 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, null, "overlaps")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, null,
        "overflows")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, null, "twice")]
    [InlineData("[1,2]", 0, null, "does not start with '{'")]
    [InlineData("{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", 0, null, "not valid UTF-8 JSON")]
    public void Header_rules(string header, int dataBytes, ulong? lengthOverride, string? error)
    {
        string path = Write(header, dataBytes, lengthOverride);
        try
        {
            if (error is null)
            {
                using var f = SafetensorsFile.Open(path);
                Assert.Equal(2, f.ReadFloat32("a").Length);
                return;
            }
            var e = Assert.Throws<ModelLoadException>(() => SafetensorsFile.Open(path).Dispose());
            Assert.Contains(error, e.Message);
            Assert.Contains(path, e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Missing_tensor_is_named()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-miss").FullName;
        try
        {
            File.Copy(Path.Combine(Fixtures.Model("tiny-gpt2"), "config.json"), Path.Combine(dir, "config.json"));
            using (var src = SafetensorsFile.Open(Path.Combine(Fixtures.Model("tiny-gpt2"), "model.safetensors")))
            {
                var w = new SafetensorsWriter();
                foreach (var t in src.Tensors.Values.Where(t => t.Name != "transformer.h.1.mlp.c_fc.bias"))
                    w.AddFloat32(t.Name, t.Shape, src.ReadFloat32(t.Name));
                w.Save(Path.Combine(dir, "model.safetensors"));
            }
            var e = Assert.Throws<ModelLoadException>(() =>
                Model.Gpt2Model.Load(dir, new ModelLoadOptions { TokenizerDirectory = Fixtures.TokenizerDir }));
            Assert.Contains("transformer.h.1.mlp.c_fc.bias", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
