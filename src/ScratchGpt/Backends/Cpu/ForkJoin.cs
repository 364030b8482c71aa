using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// A fork–join for the CPU backend's many short parallel loops. A decode step of gpt2 runs ~60 of them (four
/// matmuls and attention per layer, then the LM head), each worth 10–50 µs of work; handing items to the .NET thread
/// pool and waiting for them (<see cref="Parallel.For(int, int, Action{int})"/>) adds 2–5 µs to each on two cores,
/// as the pool's threads park between loops. Here one thread per further core stays awake between loops: it spins
/// on a generation counter for a short while after each loop (the next one starts microseconds later in a decode
/// step), yielding the core to any other runnable thread as it spins, then sleeps until woken. The caller takes
/// items too. Each core starts on its own contiguous share of the items and then takes what the others have not
/// reached (<see cref="Loop.RunItems"/>), so a slow core takes fewer. A loop that finds the workers busy (another
/// thread's loop, or a loop inside a loop) runs on <see cref="Parallel.For(int, int, Action{int})"/> instead.
/// </summary>
internal static class ForkJoin
{
    /// <summary>How long a worker spins for the next loop before it sleeps: long enough to bridge the serial
    /// steps between a decode step's loops (layernorm, a residual add: a few µs), short enough to give the core
    /// back soon after generation stops.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 5_000;   // 200 µs

    /// <summary>One loop's items and how far each core's share of them has been claimed.</summary>
    internal sealed class Loop
    {
        private readonly int count, shares;
        private readonly Action<int> body;
        /// <summary>Share s is items s·count/shares .. (s+1)·count/shares − 1; next[s] is its first unclaimed item,
        /// each on a cache line of its own, so that a core claiming from its share does not move the others'.</summary>
        private readonly Counter[] next;
        private int pending;
        private Exception? error;

        /// <summary>An int alone on its 64-byte cache line whatever the array's alignment.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 128)]
        private struct Counter { [FieldOffset(64)] public int Value; }

        public Loop(int count, Action<int> body, int shares)
        {
            (this.count, this.body, this.shares, pending) = (count, body, shares, count);
            next = new Counter[shares];
            for (int c = 0; c < shares; c++) next[c].Value = Start(c);
        }

        private int Start(int share) => (int)((long)count * share / shares);

        /// <summary>Runs items until none is left: first core <paramref name="self"/>'s own share, in order, then
        /// what is left of the others'. A core's items are one range, so the weights a decode matmul streams stay
        /// two sequential streams per core from start to end (a claim elsewhere restarts the hardware prefetcher's
        /// streams: one shared counter, all cores claiming from it in turn, streamed a two-core decode matmul at
        /// 40–49 GB/s where shares give 54–64, docs/benchmarks.md); a core slowed by another process holds no one
        /// up, as the others take what it has not reached. Each claim takes half of what is left of the share (a
        /// quarter of another core's): few claims, and small ones at the end, so no core waits long for another's
        /// last items.</summary>
        public void RunItems(int self)
        {
            int done = 0;
            for (int k = 0; k < shares; k++)
            {
                int share = (self + k) % shares, end = Start(share + 1), part = k == 0 ? 2 : 4;
                ref int counter = ref next[share].Value;
                for (int i0 = Volatile.Read(ref counter); i0 < end; i0 = Volatile.Read(ref counter))
                {
                    int i1 = i0 + Math.Max(1, (end - i0) / part);
                    if (Interlocked.CompareExchange(ref counter, i1, i0) != i0) continue;
                    for (int i = i0; i < i1; i++)
                    {
                        try { body(i); }
                        catch (Exception e) { Interlocked.CompareExchange(ref error, e, null); }
                    }
                    done += i1 - i0;
                }
            }
            if (done > 0) Interlocked.Add(ref pending, -done);
        }

        public bool Done => Volatile.Read(ref pending) == 0;

        public void ThrowIfFailed()
        {
            if (error is { } e) ExceptionDispatchInfo.Capture(e).Throw();
        }
    }

    private static readonly object Gate = new();
    private static Loop? current;
    private static long generation;
    private static int sleepers, busy, started;

    /// <summary>body(0) … body(count − 1), each once, on all cores; returns when all have run (the first
    /// exception, if any, is rethrown here). One item, or one core: all on this thread, with no hand-off, so callers
    /// need no case of their own for that.</summary>
    public static void For(int count, Action<int> body)
    {
        if (count <= 0) return;
        if (count == 1 || Environment.ProcessorCount == 1) { for (int i = 0; i < count; i++) body(i); return; }
        if (Interlocked.Exchange(ref busy, 1) == 1) { Parallel.For(0, count, body); return; }
        try
        {
            if (Volatile.Read(ref started) == 0) StartWorkers();
            var loop = new Loop(count, body, Environment.ProcessorCount);
            Volatile.Write(ref current, loop);
            // Interlocked: a full fence, so a worker that sees the new generation sees the loop, and this thread
            // reads `sleepers` only after publishing (a worker about to sleep re-checks the generation after it
            // counts itself a sleeper: one of the two always sees the other).
            Interlocked.Increment(ref generation);
            if (Volatile.Read(ref sleepers) > 0) lock (Gate) Monitor.PulseAll(Gate);
            loop.RunItems(0);
            var wait = new SpinWait();
            while (!loop.Done) wait.SpinOnce(sleep1Threshold: -1);
            Volatile.Write(ref current, null);
            loop.ThrowIfFailed();
        }
        finally { Volatile.Write(ref busy, 0); }
    }

    private static void StartWorkers()
    {
        lock (Gate)
        {
            if (started == 1) return;
            for (int w = 1; w < Environment.ProcessorCount; w++)
            {
                int self = w;
                new Thread(() => Work(self)) { IsBackground = true, Name = $"ScratchGpt CPU worker {w}" }.Start();
            }
            Volatile.Write(ref started, 1);
        }
    }

    /// <summary>Worker <paramref name="self"/> (1 … cores − 1; the caller of a loop is 0): each loop's share
    /// <paramref name="self"/> first.</summary>
    private static void Work(int self)
    {
        long seen = Volatile.Read(ref generation);
        while (true)
        {
            seen = NextGeneration(seen);
            Volatile.Read(ref current)?.RunItems(self);
        }
    }

    /// <summary>Waits for a generation after <paramref name="seen"/>: spinning first, then asleep.</summary>
    private static long NextGeneration(long seen)
    {
        long until = Stopwatch.GetTimestamp() + SpinTicks;
        for (int spins = 0; ; spins++)
        {
            long g = Volatile.Read(ref generation);
            if (g != seen) return g;
            // Between checks, offer the core to any other runnable thread (sched_yield returns at once when there
            // is none): a spinning worker must not take a core's time from the caller or another process.
            if ((spins & 3) == 3) Thread.Yield();
            else Thread.SpinWait(8);
            if ((spins & 63) == 63 && Stopwatch.GetTimestamp() > until) break;
        }
        lock (Gate)
        {
            Interlocked.Increment(ref sleepers);
            try
            {
                long g;
                while ((g = Volatile.Read(ref generation)) == seen) Monitor.Wait(Gate);
                return g;
            }
            finally { Interlocked.Decrement(ref sleepers); }
        }
    }
}
