using ScratchGpt.Backends;
using ScratchGpt.Loading;

namespace ScratchGpt.Model;

/// <summary>
/// Activation buffers for up to <see cref="Rows"/> new positions at a time. Each session owns one, so
/// the decode loop allocates nothing and several threads can share one model.
/// </summary>
public sealed class Workspace : IDisposable
{
    public int Rows { get; }
    public int LogitRows { get; }
    public IDeviceBuffer X, A, Qkv, Proj, Hidden, Logits;   // [T,E] [T,E] [T,3E] [T,E] [T,M] [T,V]
    /// <summary>One row's qkv and attention output: a batched decode step stages each sequence's row here, since
    /// attention runs per sequence over its own cache and reads/writes from the start of its buffers.</summary>
    public IDeviceBuffer RowQkv, RowA;                      // [3E] [E]

    public Workspace(IBackend be, Gpt2Config c, int rows, bool allLogits)
    {
        Rows = rows;
        LogitRows = allLogits ? rows : 1;
        X = be.Allocate((long)rows * c.NEmbd);
        A = be.Allocate((long)rows * c.NEmbd);
        Qkv = be.Allocate((long)rows * 3 * c.NEmbd);
        Proj = be.Allocate((long)rows * c.NEmbd);
        Hidden = be.Allocate((long)rows * c.MlpWidth);
        Logits = be.Allocate((long)LogitRows * c.VocabSize);
        RowQkv = be.Allocate(3L * c.NEmbd);
        RowA = be.Allocate(c.NEmbd);
    }

    public void Dispose()
    {
        X.Dispose();
        A.Dispose();
        Qkv.Dispose();
        Proj.Dispose();
        Hidden.Dispose();
        Logits.Dispose();
        RowQkv.Dispose();
        RowA.Dispose();
    }
}
