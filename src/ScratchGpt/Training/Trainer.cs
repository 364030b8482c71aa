using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScratchGpt.Loading;

namespace ScratchGpt.Training;

/// <summary>
/// The training loop: for each epoch, shuffled blocks in micro-batches → loss and gradients →
/// (every <c>GradientAccumulationSteps</c>) clip, AdamW step, next learning rate; evaluate on the
/// validation split at the end of each epoch and keep the best model.
///
/// Output folder:
///   config.json, generation_config.json, model.safetensors, the tokenizer files — the best model (by
///       validation loss; the last one when there is no validation split), loadable by transformers and by us;
///   training_results.json — the table, losses, unigram baseline, speed;
///   checkpoint/ — the latest state (float32 weights, AdamW moments, trainer_state.json) for --resume.
/// </summary>
public sealed class Trainer : IDisposable
{
    public Gpt2Parameters Parameters { get; }
    public TextDataset Data { get; }
    public TrainingOptions Options { get; }
    public List<EpochResult> History { get; } = [];
    public double? BestValidationLoss { get; private set; }
    public double TokensPerSecond { get; private set; }

    /// <summary>Where the steps run (the CPU, or an ILGPU device).</summary>
    public ITrainingEngine Engine { get; }
    private readonly AdamW _optimizer;
    private int _startEpoch, _startBlock;

    public long StepsPerEpoch => (Data.TrainBlocks / Options.BatchSize) / Options.GradientAccumulationSteps;
    public long TotalSteps => Math.Min(Options.MaxSteps ?? long.MaxValue, StepsPerEpoch * Options.Epochs);

    /// <param name="device">An ILGPU backend to train on (the weights are copied there); null
    /// trains on the CPU.</param>
    public Trainer(Gpt2Parameters parameters, TextDataset data, TrainingOptions options,
        Backends.Ilgpu.IlgpuBackend? device = null)
    {
        options.Validate();
        if (options.BlockSize > parameters.Config.NPositions)
            throw new ArgumentException($"--block-size {options.BlockSize} is larger than the model's n_positions " +
                $"{parameters.Config.NPositions}");
        // The dropout the run uses is written into the saved config.json too, so the folder says how it was trained.
        if (options.Dropout is float d)
            parameters = parameters.WithConfig(parameters.Config with { ResidPdrop = d, EmbdPdrop = d, AttnPdrop = d });
        Parameters = parameters;
        Data = data;
        Options = options;
        if (StepsPerEpoch < 1)
            throw new ArgumentException($"{data.Source}: {data.TrainBlocks} training blocks are fewer than one step " +
                $"of --batch-size {options.BatchSize} × --grad-accum {options.GradientAccumulationSteps}");
        _optimizer = new AdamW(parameters, options.WeightDecay);
        var dropout = (parameters.Config.EmbdPdrop, parameters.Config.AttnPdrop, parameters.Config.ResidPdrop);
        Engine = device is null ? new CpuTrainingEngine(parameters, _optimizer, dropout)
            : new DeviceTrainingModel(device, parameters, _optimizer, dropout);
    }

    public LearningRateSchedule Schedule => new(Options.LearningRate,
        Options.WarmupSteps ?? (long)Math.Ceiling(TotalSteps * 0.05), TotalSteps, Options.MinLearningRateRatio);

    /// <summary>Runs the remaining epochs, writing the tokenizer's files (when the data knows them), the best model and
    /// checkpoint/ into <paramref name="outputDirectory"/>. Returns normally when cancelled (after saving the
    /// checkpoint).</summary>
    public void Run(string outputDirectory, IProgress<TrainingProgress>? progress = null,
        Action<EpochResult>? onEpoch = null, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(outputDirectory);
        if (Data.TokenizerDirectory is string tokenizer) CopyTokenizerFiles(tokenizer, outputDirectory);
        int B = Options.BatchSize, T = Options.BlockSize, accum = Options.GradientAccumulationSteps;
        var ids = new int[B * T]; var targets = new int[B * T];
        var schedule = Schedule;
        var clock = Stopwatch.StartNew();
        long tokensSeen = 0;
        for (int epoch = _startEpoch; epoch < Options.Epochs && _optimizer.Step < TotalSteps; epoch++)
        {
            var order = Data.EpochOrder(Options.Seed, epoch);
            double lossSum = 0; int lossCount = 0;
            int block = epoch == _startEpoch ? _startBlock : 0;
            while (block + B * accum <= order.Length && _optimizer.Step < TotalSteps)
            {
                if (cancel.IsCancellationRequested)
                {
                    Engine.CopyToHost();
                    SaveCheckpoint(outputDirectory, epoch, block);
                    return;
                }
                Engine.ZeroGradients();
                double stepLoss = 0;
                for (int a = 0; a < accum; a++, block += B)
                {
                    Data.FillTrain(order.AsSpan(block, B), ids, targets);
                    int dropoutSeed = TextDataset.MixSeed(Options.Seed, _optimizer.Step, a);
                    stepLoss += Engine.AddGradients(ids, targets, B, T, 1f / accum, dropoutSeed) / accum;
                }
                double norm = Engine.ClipGradients(Options.MaxGradNorm);
                double lr = schedule.At(_optimizer.Step);
                Engine.Update((float)lr);
                lossSum += stepLoss; lossCount++;
                tokensSeen += (long)B * T * accum;
                TokensPerSecond = tokensSeen / clock.Elapsed.TotalSeconds;
                progress?.Report(
                    new TrainingProgress(epoch + 1, _optimizer.Step, TotalSteps, stepLoss, lr, norm, TokensPerSecond,
                    clock.Elapsed));
            }
            double? val = Data.ValidationBlocks > 0 ? Evaluate(cancel) : null;
            var row = new EpochResult(epoch + 1, _optimizer.Step, lossCount > 0 ? lossSum / lossCount : double.NaN,
                val);
            History.Add(row);
            Engine.CopyToHost();   // the weights and Adam moments the saves below write
            if (val is null || BestValidationLoss is null || val < BestValidationLoss)
            {
                BestValidationLoss = val ?? BestValidationLoss;
                SaveModel(outputDirectory, Options.SaveDType);
            }
            SaveCheckpoint(outputDirectory, epoch + 1, 0);
            WriteResults(outputDirectory);
            onEpoch?.Invoke(row);
        }
    }

    /// <summary>Mean validation loss in nats per token over the held-out split.</summary>
    public double Evaluate(CancellationToken cancel = default)
    {
        int B = Options.BatchSize, T = Options.BlockSize;
        var ids = new int[B * T]; var targets = new int[B * T];
        double total = 0; long count = 0;
        for (int b0 = 0; b0 < Data.ValidationBlocks; b0 += B)
        {
            cancel.ThrowIfCancellationRequested();
            int rows = Math.Min(B, Data.ValidationBlocks - b0), n = 0;
            for (int r = 0; r < rows; r++) n += Data.FillValidation(b0 + r, r, ids, targets);
            total += Engine.Loss(ids[..(rows * T)], targets[..(rows * T)], rows, T) * n;
            count += n;
        }
        return total / count;
    }

    /// <summary>Writes the host's parameters (call <see cref="ITrainingEngine.CopyToHost"/> first).</summary>
    private void SaveModel(string dir, string dtype)
    {
        Parameters.SaveSafetensors(Path.Combine(dir, "model.safetensors"), dtype);
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Parameters.Config.ToJson(dtype));
        AtomicFile.WriteAllText(Path.Combine(dir, "generation_config.json"), Parameters.Config.GenerationConfigJson());
    }

    /// <summary>Copies the tokenizer files (vocab.json + merges.txt, and tokenizer.json where there is one) beside the
    /// model so the folder is complete on its own.</summary>
    public static void CopyTokenizerFiles(string fromDirectory, string outputDirectory)
    {
        foreach (string name in new[] { "vocab.json", "merges.txt", "tokenizer.json" })
        {
            string from = Path.Combine(fromDirectory, name);
            if (File.Exists(from)) AtomicFile.Copy(from, Path.Combine(outputDirectory, name));
        }
    }

    /// <summary>The epoch table as JSON, for training_results.json and trainer_state.json.</summary>
    private JsonArray HistoryJson() => new(History.Select(h => (JsonNode)new JsonObject
    {
        ["epoch"] = h.Epoch, ["step"] = h.Step, ["training_loss"] = h.TrainingLoss,
        ["validation_loss"] = h.ValidationLoss,
    }).ToArray());

    private void WriteResults(string dir)
    {
        var o = new JsonObject
        {
            ["data"] = Data.Source,
            ["train_tokens"] = Data.Train.Length,
            ["validation_tokens"] = Data.Validation.Length,
            ["unigram_entropy_of_validation_nats"] = Data.Validation.Length > 1 ? Data.UnigramEntropy() : null,
            ["unigram_model_validation_loss_nats"] = Data.Validation.Length > 1
                ? Data.UnigramCrossEntropy(Parameters.Config.VocabSize) : null,
            ["best_validation_loss"] = BestValidationLoss,
            ["steps"] = _optimizer.Step,
            ["tokens_per_second"] = Math.Round(TokensPerSecond, 1),
            ["options"] = JsonSerializer.SerializeToNode(Options),
            ["epochs"] = HistoryJson(),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "training_results.json"),
            o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    // ---- checkpoint / resume ------------------------------------------------------------------------

    /// <summary>Writes the host's parameters, Adam moments and the position in the data (call
    /// <see cref="ITrainingEngine.CopyToHost"/> first).</summary>
    private void SaveCheckpoint(string outputDirectory, int epoch, int block)
    {
        string dir = Path.Combine(outputDirectory, "checkpoint");
        Directory.CreateDirectory(dir);
        Parameters.SaveSafetensors(Path.Combine(dir, "model.safetensors"));
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Parameters.Config.ToJson());
        new SafetensorsWriter()
            .AddFloat32("adamw.m", [_optimizer.M.Length], _optimizer.M)
            .AddFloat32("adamw.v", [_optimizer.V.Length], _optimizer.V)
            .Save(Path.Combine(dir, "optimizer.safetensors"));
        var state = new JsonObject
        {
            ["global_step"] = _optimizer.Step,
            ["epoch"] = epoch,
            ["block"] = block,
            ["best_validation_loss"] = BestValidationLoss,
            ["train_tokens"] = Data.Train.Length,
            ["history"] = HistoryJson(),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "trainer_state.json"),
            state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Restores the optimiser and the position in the data from a checkpoint folder written by an
    /// earlier run with the same data and options (its weights must already be in <see cref="Parameters"/>).</summary>
    public void RestoreState(string checkpointDirectory)
    {
        string statePath = Path.Combine(checkpointDirectory, "trainer_state.json");
        if (!File.Exists(statePath))
            throw new ModelLoadException($"{statePath}: not found; --resume takes the checkpoint/ folder a training " +
                "run wrote");
        var state = JsonNode.Parse(File.ReadAllText(statePath))!;
        if (state["train_tokens"]!.GetValue<int>() != Data.Train.Length)
            throw new ModelLoadException($"{statePath}: the checkpoint was trained on {state["train_tokens"]} " +
                $"tokens, this data has {Data.Train.Length}; resume with the same --data and --eval-split");
        using (var f = SafetensorsFile.Open(Path.Combine(checkpointDirectory, "optimizer.safetensors")))
        {
            var m = f.ReadFloat32("adamw.m"); var v = f.ReadFloat32("adamw.v");
            if (m.Length != _optimizer.M.Length || v.Length != _optimizer.V.Length)
                throw new ModelLoadException($"{checkpointDirectory}: optimizer state has {m.Length} entries, the " +
                    $"model {_optimizer.M.Length}");
            m.CopyTo(_optimizer.M, 0); v.CopyTo(_optimizer.V, 0);
        }
        Engine.CopyFromHost();
        _optimizer.Step = state["global_step"]!.GetValue<long>();
        _startEpoch = state["epoch"]!.GetValue<int>();
        _startBlock = state["block"]!.GetValue<int>();
        BestValidationLoss = state["best_validation_loss"]?.GetValue<double>();
        foreach (var h in state["history"]!.AsArray())
            History.Add(
                new EpochResult(h!["epoch"]!.GetValue<int>(), h["step"]!.GetValue<long>(),
                h["training_loss"]!.GetValue<double>(), h["validation_loss"]?.GetValue<double>()));
    }

    public void Dispose() => Engine.Dispose();
}
