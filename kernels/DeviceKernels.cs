using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace ScratchGpt.Kernels;

/// <summary>
/// Every kernel as a typed launcher on one accelerator, loaded (compiled) once when the backend opens: a launch is
/// a call such as <c>k.Gelu(config, x, n)</c>, checked by the C# compiler, with its geometry in the
/// <see cref="KernelConfig"/>. Launches on one accelerator run in order on its default stream.
/// </summary>
public sealed class DeviceKernels
{
    public readonly WeightKernels<Float32Weight> Float32;
    public readonly WeightKernels<Float16Weight> Float16;
    public readonly WeightKernels<BFloat16Weight> BFloat16;

    // forward
    public readonly Action<KernelConfig, ArrayView<float>, int> Gelu;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> Add, Multiply;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, int, int, int, float> LayerNorm;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int,
        int> StoreKeysValues;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, int, int, int, int, int, int> Attention;
    public readonly Action<KernelConfig, ArrayView<float>, int, ArrayView<int>> Argmax;

    // training
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> GeluBackward;
    public readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>, int, int, ArrayView<float>, int,
        int, int, int> Gemm;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> ColumnSums;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, int, int, int> LayerNormBackward;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, int, int> LayerNormParameterGradients;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int,
        int, int, int, int> AttentionTrain;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, int, int, int, int> AttentionBackwardQuery, AttentionBackwardKeyValue;
    public readonly Action<KernelConfig, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int,
        int> EmbeddingBackward;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, float,
        int> CrossEntropy;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int,
        AdamWStep> AdamW;
    public readonly Action<KernelConfig, ArrayView<float>, int, ArrayView<float>, int> SumSquares;

    public DeviceKernels(Accelerator a)
    {
        Float32 = new(a); Float16 = new(a); BFloat16 = new(a);
        Gelu = a.LoadStreamKernel<ArrayView<float>, int>(Kernels.Gelu.Forward);
        Add = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(Elementwise.Add);
        Multiply = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(Elementwise.Multiply);
        LayerNorm = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, int, int, int, float>(Kernels.LayerNorm.Forward);
        StoreKeysValues = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int,
            int>(Kernels.Attention.StoreKeysValues);
        Attention = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, int, int, int, int, int, int>(Kernels.Attention.Forward);
        Argmax = a.LoadStreamKernel<ArrayView<float>, int, ArrayView<int>>(Kernels.Argmax.Forward);
        GeluBackward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(Kernels.Gelu.Backward);
        Gemm = a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>, int, int, ArrayView<float>, int, int,
            int, int>(Kernels.Gemm.Strided);
        ColumnSums = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(Kernels.Gemm.ColumnSums);
        LayerNormBackward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, int, int, int>(Kernels.LayerNorm.Backward);
        LayerNormParameterGradients = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(Kernels.LayerNorm.ParameterGradients);
        AttentionTrain = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int,
            int, int, int, int>(AttentionTraining.Forward);
        AttentionBackwardQuery = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(AttentionTraining.BackwardQuery);
        AttentionBackwardKeyValue = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int,
            int>(AttentionTraining.BackwardKeyValue);
        EmbeddingBackward = a.LoadStreamKernel<ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            int, int, int>(Embedding.Backward);
        CrossEntropy = a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, float,
            int>(Kernels.CrossEntropy.Forward);
        AdamW = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int,
            AdamWStep>(Optimizer.AdamW);
        SumSquares = a.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>, int>(Optimizer.SumSquares);
    }

    /// <summary>Every kernel method once, by name, with the weight-reading ones once per weight type: what
    /// `scratchgpt kernels compile` writes out as PTX or OpenCL C.</summary>
    public static IReadOnlyList<(string Name, MethodInfo Method)> EntryPoints()
    {
        var list = new List<(string, MethodInfo)>();
        void Add(string name, Delegate kernel) => list.Add((name, kernel.Method));
        Add("gelu", Kernels.Gelu.Forward);
        Add("add", Elementwise.Add);
        Add("multiply", Elementwise.Multiply);
        Add("layernorm", Kernels.LayerNorm.Forward);
        Add("store_keys_values", Kernels.Attention.StoreKeysValues);
        Add("attention", Kernels.Attention.Forward);
        Add("argmax", Kernels.Argmax.Forward);
        Add("gelu_backward", Kernels.Gelu.Backward);
        Add("gemm", Kernels.Gemm.Strided);
        Add("column_sums", Kernels.Gemm.ColumnSums);
        Add("layernorm_backward", Kernels.LayerNorm.Backward);
        Add("layernorm_parameter_gradients", Kernels.LayerNorm.ParameterGradients);
        Add("attention_train", AttentionTraining.Forward);
        Add("attention_backward_query", AttentionTraining.BackwardQuery);
        Add("attention_backward_key_value", AttentionTraining.BackwardKeyValue);
        Add("embedding_backward", Embedding.Backward);
        Add("cross_entropy", Kernels.CrossEntropy.Forward);
        Add("adamw", Optimizer.AdamW);
        Add("sum_squares", Optimizer.SumSquares);
        foreach (var (suffix, type) in new[] { ("f32", typeof(Float32Weight)), ("f16", typeof(Float16Weight)),
            ("bf16", typeof(BFloat16Weight)) })
        {
            list.Add(
                ($"embedding_{suffix}",
                typeof(Embedding).GetMethod(nameof(Embedding.Forward))!.MakeGenericMethod(type)));
            list.Add(($"matvec_{suffix}", typeof(MatMul).GetMethod(nameof(MatMul.Vector))!.MakeGenericMethod(type)));
            list.Add(
                ($"matvec_per_thread_{suffix}",
                typeof(MatMul).GetMethod(nameof(MatMul.VectorPerThread))!.MakeGenericMethod(type)));
            list.Add(
                ($"matmul_tiled_{suffix}", typeof(MatMul).GetMethod(nameof(MatMul.Tiled))!.MakeGenericMethod(type)));
        }
        return list;
    }
}
