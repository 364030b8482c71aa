using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace ScratchGpt.Loading.Torch;

/// <summary>A global a pickle names (module and attribute), e.g. torch._utils._rebuild_tensor_v2.</summary>
public sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}
