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
    }

    public void Dispose()
    {
        X.Dispose(); A.Dispose(); Qkv.Dispose(); Proj.Dispose(); Hidden.Dispose(); Logits.Dispose();
    }
}
