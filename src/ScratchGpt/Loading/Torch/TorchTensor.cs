using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace ScratchGpt.Loading.Torch;

/// <summary>A tensor as torch.save describes it: a view (offset, shape, stride) of a storage.</summary>
public sealed record TorchTensor(TorchStorage Storage, long StorageOffset, long[] Shape, long[] Stride);
