using ScratchGpt.Backends.Cpu;

namespace ScratchGpt.Tests;

/// <summary>The CPU backend's fork–join: every item runs exactly once, before For returns, however the loops
/// arrive — one after another (the workers awake), after the workers have gone to sleep, from several threads at
/// once, or a loop inside a loop — and an item's exception reaches the caller.</summary>
public class ForkJoinTests
{
    private static int[] RunCounts(int count)
    {
        var runs = new int[count];
        ForkJoin.For(count, i => Interlocked.Increment(ref runs[i]));
        return runs;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(16)]
    [InlineData(785)]     // the LM head's blocks: items are claimed in runs
    [InlineData(10_001)]
    public void Every_item_runs_exactly_once(int count) =>
        Assert.All(RunCounts(count), n => Assert.Equal(1, n));

    [Fact]
    public void A_core_runs_its_own_share_in_order_then_what_the_others_have_not_reached()
    {
        var order = new List<int>();
        var loop = new ForkJoin.Loop(10, order.Add, shares: 2);
        Assert.False(loop.Done);
        loop.RunItems(1);   // alone: its share (items 5 … 9) first, in order, then all of core 0's
        Assert.Equal([5, 6, 7, 8, 9, 0, 1, 2, 3, 4], order);
        Assert.True(loop.Done);
        loop.RunItems(0);   // nothing left: a late core runs no item twice
        Assert.Equal(10, order.Count);
    }

    [Fact]
    public void Back_to_back_loops_and_loops_after_the_workers_sleep_each_finish_before_returning()
    {
        for (int loop = 0; loop < 2_000; loop++)
        {
            var runs = RunCounts(3 + loop % 29);
            Assert.All(runs, n => Assert.Equal(1, n));
            if (loop % 500 == 499) Thread.Sleep(20);   // long past the workers' spin: they are asleep
        }
    }

    [Fact]
    public void Loops_from_several_threads_at_once_and_nested_loops_are_all_complete()
    {
        var failures = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ =>
        {
            for (int loop = 0; loop < 200; loop++)
            {
                var outer = new long[5];
                ForkJoin.For(outer.Length, o =>
                {
                    var inner = RunCounts(11);
                    outer[o] = inner.Sum();
                });
                if (outer.Any(s => s != 11)) Interlocked.Increment(ref failures);
            }
        });
        Assert.Equal(0, failures);
    }

    [Fact]
    public void An_items_exception_reaches_the_caller_after_the_other_items_ran()
    {
        var runs = new int[64];
        var e = Assert.Throws<InvalidOperationException>(() => ForkJoin.For(runs.Length, i =>
        {
            Interlocked.Increment(ref runs[i]);
            if (i == 37) throw new InvalidOperationException("item 37");
        }));
        Assert.Equal("item 37", e.Message);
        Assert.All(runs, n => Assert.Equal(1, n));
        Assert.All(RunCounts(64), n => Assert.Equal(1, n));   // and the next loop runs as usual
    }
}
