using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace ScratchGpt.Loading.Torch;

/// <summary>An ordered dictionary (the state dict).</summary>
public sealed class PickleDict : List<KeyValuePair<object, object?>>;
