using ScratchGpt.Loading;
using ScratchGpt.Model;
using ScratchGpt.Training;

namespace ScratchGpt.Tests;

/// <summary>The training loop end to end on a tiny GPT-2: the loss falls, resume is exact, the output folder
/// loads.</summary>
[Collection("console")]
public sealed class TrainerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sgpt-train").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly Gpt2Config Tiny = new() { NLayer = 2, NHead = 2, NEmbd = 32, NPositions = 64 };

    private static string Text =>
        File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "..", "shared", "corpus", "tinyshakespeare.txt"))[..12_000];

    private static TextDataset Data(int block) =>
        new(Fixtures.Tokenizer.Encode(Text), 0.1, block, "tinyshakespeare[..12000]");

    [Fact]
    public void A_short_run_on_a_tiny_model_lowers_the_loss_by_more_than_three_nats()
    {
        var options = new TrainingOptions
        {
            Epochs = 3,
            MaxSteps = 45,
            BatchSize = 4,
            BlockSize = 32,
            LearningRate = 5e-3,
            WeightDecay = 0.01f,
            Seed = 1,
            Dropout = 0f,
        };
        var trainer = new Trainer(Gpt2Parameters.Initialize(Tiny, 1), Data(32), options);
        double before = trainer.Evaluate();
        trainer.Run(_dir);
        double after = trainer.History[^1].ValidationLoss!.Value;
        Assert.InRange(before, 10.5, 11.2);              // ≈ ln(50257) = 10.8 at initialisation
        Assert.True(before - after > 3.0, $"validation loss {before:F3} → {after:F3}");
        Assert.True(trainer.History[^1].TrainingLoss < trainer.History[0].TrainingLoss);
        Assert.Equal(Math.Min(trainer.History.Min(h => h.ValidationLoss!.Value), after),
            trainer.BestValidationLoss!.Value, 12);
    }

    [Fact]
    public void Resuming_from_the_checkpoint_gives_exactly_the_uninterrupted_run()
    {
        var options = new TrainingOptions
        {
            Epochs = 2,
            BatchSize = 2,
            BlockSize = 16,
            LearningRate = 1e-3,
            Seed = 3,
            MaxSteps = 12,
        };
        var data = Data(16);
        var straight = new Trainer(Gpt2Parameters.Initialize(Tiny, 2), data, options);
        straight.Run(Path.Combine(_dir, "straight"));

        string outDir = Path.Combine(_dir, "resumed");
        var first = new Trainer(Gpt2Parameters.Initialize(Tiny, 2), data, options with { Epochs = 1 });
        first.Run(outDir);
        var resumed = Resume(outDir, data, options);
        Assert.Equal(straight.Parameters.Values, resumed.Parameters.Values);
        Assert.Equal(straight.History.Select(h => h.ValidationLoss), resumed.History.Select(h => h.ValidationLoss));
    }

    /// <summary>What --resume DIR/checkpoint does: weights from the checkpoint, then optimiser and data position, then
    /// the rest of the run.</summary>
    private static Trainer Resume(string outDir, TextDataset data, TrainingOptions options)
    {
        string checkpoint = Path.Combine(outDir, "checkpoint");
        var trainer = new Trainer(Gpt2Parameters.Load(checkpoint), data, options);
        trainer.RestoreState(checkpoint);
        trainer.Run(outDir);
        return trainer;
    }

    [Fact]
    public void Cancelling_mid_epoch_saves_a_checkpoint_that_resumes_exactly()
    {
        var options = new TrainingOptions
        {
            Epochs = 1,
            BatchSize = 2,
            BlockSize = 16,
            LearningRate = 1e-3,
            Seed = 4,
            MaxSteps = 8,
        };
        var data = Data(16);
        var straight = new Trainer(Gpt2Parameters.Initialize(Tiny, 5), data, options);
        straight.Run(Path.Combine(_dir, "straight"));

        // Ctrl-C after step 3: Run returns, leaving checkpoint/ at step 3 in the middle of epoch 1.
        string outDir = Path.Combine(_dir, "cancelled");
        using var cts = new CancellationTokenSource();
        var first = new Trainer(Gpt2Parameters.Initialize(Tiny, 5), data, options);
        first.Run(outDir, new Cli.SyncProgress<TrainingProgress>(p => { if (p.Step == 3) cts.Cancel(); }),
            cancel: cts.Token);
        Assert.Empty(first.History);
        string checkpoint = Path.Combine(outDir, "checkpoint");
        var state = System.Text.Json.Nodes.JsonNode.Parse(
            File.ReadAllText(Path.Combine(checkpoint, "trainer_state.json")))!;
        Assert.Equal(3, state["global_step"]!.GetValue<long>());
        Assert.Equal(3 * 2, state["block"]!.GetValue<int>());

        Assert.Equal(straight.Parameters.Values, Resume(outDir, data, options).Parameters.Values);
    }

    [Fact]
    public void Train_command_writes_a_loadable_hugging_face_folder_and_the_epoch_table()
    {
        string data = Path.Combine(_dir, "data.txt");
        File.WriteAllText(data, Text);
        string outDir = Path.Combine(_dir, "out");
        var (code, stdout, err) = CliTests.RunCli("train", "--config", "gpt2", "--n-layer", "1", "--n-head", "2",
            "--n-embd", "32", "--n-positions", "64",
            "--data", data, "--block-size", "32", "--batch-size", "4", "--epochs", "2", "--max-steps", "6", "--lr",
            "3e-3", "--out", outDir, "--save-dtype", "f16");
        Assert.True(code == 0, err);
        Assert.Contains("Training Loss", stdout);
        Assert.Contains("Validation Loss", stdout);
        Assert.Contains("tokens/s", stdout);
        foreach (string f in new[] { "config.json", "generation_config.json", "model.safetensors", "vocab.json",
            "merges.txt", "training_results.json", "checkpoint/optimizer.safetensors" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Assert.Contains("\"torch_dtype\": \"float16\"", File.ReadAllText(Path.Combine(outDir, "config.json")));
        using (var st = SafetensorsFile.Open(Path.Combine(outDir, "model.safetensors")))
        {
            Assert.Equal(SafetensorsDType.F16, st.Tensors["transformer.wte.weight"].DType);
            // Conv1D layout [in, out]
            Assert.Equal([32L, 96], st.Tensors["transformer.h.0.attn.c_attn.weight"].Shape);
        }
        using var model = Gpt2Model.Load(outDir, new ModelLoadOptions { Device = "cpu" });
        var result = new Decoding.Generator(model)
            .Generate(model.Tokenizer!.Encode("ROMEO:"), new Decoding.GenerationConfig { MaxNewTokens = 5 });
        Assert.Equal(5, result.Sequences[0].NewIds.Length);
    }

    [Theory]
    [InlineData("training text not found", "--data", "/no/such/file.txt")]
    [InlineData("--block-size 128 is larger than the model's n_positions 64", "--block-size", "128")]
    [InlineData("--device: unknown device 'tpu'", "--device", "tpu")]
    [InlineData("--device ilgpu-cpu:9: only 1 device(s) found", "--device", "ilgpu-cpu:9")]
    [InlineData("--lr must be a positive number", "--lr", "-1")]
    [InlineData("--eval-split must be in [0, 1)", "--eval-split", "1.5")]
    public void Bad_training_input_is_one_clear_line(string expected, string option, string value)
    {
        string data = Path.Combine(_dir, "data.txt");
        File.WriteAllText(data, Text);
        var args = new List<string> { "train", "--config", "gpt2", "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
            "--n-positions", "64", "--data", data, "--block-size", "32", "--out", Path.Combine(_dir, "o") };
        int at = args.IndexOf(option);
        if (at >= 0) args[at + 1] = value; else args.AddRange([option, value]);
        var (code, _, err) = CliTests.RunCli([.. args]);
        Assert.Equal(1, code);
        Assert.Contains(expected, err);
        Assert.Single(err.Split('\n'), l => l.StartsWith("error:"));
    }
}
