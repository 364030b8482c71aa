using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace ScratchGpt.Loading.Torch;

/// <summary>A storage a tensor points into: its dtype, its key (file name in the archive) and its element
/// count.</summary>
public sealed record TorchStorage(SafetensorsDType DType, string Key, long ElementCount);
