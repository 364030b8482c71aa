namespace ScratchGpt.Tests;

/// <summary>The dependency rule of README ("Layers") holds in the compiled code, and the check catches a
/// breach.</summary>
public class LayerDependencyTests
{
    [Fact]
    public void Every_layer_uses_only_the_layers_below_it()
    {
        var types = typeof(Loading.Gpt2Config).Assembly.GetTypes()
            .Concat(typeof(Kernels.DeviceKernels).Assembly.GetTypes()).ToList();
        Assert.Contains(types, t => LayerDependencies.LayerOf(t) == "Decoding");   // the check sees the layers at all
        var violations = LayerDependencies.Violations(types);
        Assert.True(violations.Count == 0, string.Join("\n", violations.Take(30)));
    }

    [Fact]
    public void A_planted_wrong_way_reference_is_caught()
    {
        var violations = LayerDependencies.Violations(
            [typeof(Decoding.Planted.ReadsAFile), typeof(Decoding.Planted.Clean)]);
        var v = Assert.Single(violations);
        Assert.Contains("ReadsAFile (Decoding) → ScratchGpt.Loading.ModelFolder (Loading)", v);
    }
}
