using ScratchGpt.Tokenization;
using System.CommandLine;
using ScratchGpt.Backends;
using ScratchGpt.Loading;
using ScratchGpt.Training;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt train: fine-tune a GPT-2 folder, or train one from scratch, on a text file.</summary>
public static class TrainCommand
{
    static readonly Option<string?> Model = new("--model")
    {
        Description = "model folder or Hub model id to fine-tune",
    };
    static readonly Option<string?> Config = new("--config")
    {
        Description = "train from scratch: gpt2 | gpt2-medium | gpt2-large | gpt2-xl | distilgpt2 (shape overridable " +
            "with --n-*)",
    };
    static readonly Option<int?> NLayer = new("--n-layer") { Description = "with --config: n_layer" };
    static readonly Option<int?> NHead = new("--n-head") { Description = "with --config: n_head" };
    static readonly Option<int?> NEmbd = new("--n-embd") { Description = "with --config: n_embd" };
    static readonly Option<int?> NPositions = new("--n-positions") { Description = "with --config: n_positions" };
    static readonly Option<string> Data = new("--data")
    {
        Description = "UTF-8 text file to train on",
        Required = true,
    };
    static readonly Option<double> EvalSplit = new("--eval-split")
    {
        Description = "fraction of the tokens, from the end, held out for validation",
        DefaultValueFactory = _ => 0.1,
    };
    static readonly Option<int> Epochs = new("--epochs") { DefaultValueFactory = _ => 1 };
    static readonly Option<long?> MaxSteps = new("--max-steps")
    {
        Description = "stop after this many optimiser steps",
    };
    static readonly Option<double> Lr = new("--lr")
    {
        Description = "peak learning rate",
        DefaultValueFactory = _ => 2e-5,
    };
    static readonly Option<float> WeightDecay = new("--weight-decay") { DefaultValueFactory = _ => 0.01f };
    static readonly Option<long?> Warmup = new("--warmup-steps")
    {
        Description = "linear warm-up steps (default: 5% of all steps), then cosine decay",
    };
    static readonly Option<int> BatchSize = new("--batch-size")
    {
        Description = "sequences per micro-batch",
        DefaultValueFactory = _ => 8,
    };
    static readonly Option<int> BlockSize = new("--block-size")
    {
        Description = "tokens per sequence",
        DefaultValueFactory = _ => 128,
    };
    static readonly Option<int> GradAccum = new("--grad-accum")
    {
        Description = "micro-batches per optimiser step",
        DefaultValueFactory = _ => 1,
    };
    static readonly Option<double> MaxGradNorm = new("--max-grad-norm")
    {
        Description = "clip gradients to this global norm (0: off)",
        DefaultValueFactory = _ => 1.0,
    };
    static readonly Option<string> Out = new("--out")
    {
        Description = "output folder (best model, results, checkpoint/)",
        Required = true,
    };
    static readonly Option<string?> Resume = new("--resume")
    {
        Description = "continue from a checkpoint/ folder written by an earlier run",
    };
    static readonly Option<string> SaveDType = new("--save-dtype")
    {
        Description = "f32 | f16 | bf16 for the saved model",
        DefaultValueFactory = _ => "f32",
    };
    static readonly Option<int> Seed = new("--seed") { DefaultValueFactory = _ => 42 };
    static readonly Option<float?> DropoutOpt = new("--dropout")
    {
        Description = "dropout for embeddings, attention and residuals (default: the model config's *_pdrop, 0.1 for " +
            "a new model)",
    };

    public static Command Create()
    {
        var c = new Command("train",
            "Train GPT-2 on a text file (fine-tune --model, or from scratch with --config): AdamW, warm-up + cosine, " +
            "clipping, per-epoch validation, best checkpoint, resume.");
        foreach (var o in new Option[]
        {
            Model, Config, NLayer, NHead, NEmbd, NPositions, Data, EvalSplit, Epochs, MaxSteps, Lr, WeightDecay, Warmup,
            BatchSize, BlockSize, GradAccum, MaxGradNorm, Out, Resume, SaveDType, Seed, DropoutOpt, Common.Tokenizer,
            Common.Device, Common.Verbose,
        })
            c.Options.Add(o);
        Common.AddHubOptions(c);
        Common.Action(c, (p, ct) => Task.FromResult(Train(p, ct)));
        return c;
    }

    private static int Train(ParseResult p, CancellationToken ct)
    {
        // The device first, so a bad or missing one fails before any work. auto takes CUDA, then an OpenCL GPU,
        // then the CPU; opencl / cuda name a device explicitly.
        using var backend = BackendFactory.Create(p.GetValue(Common.Device)!,
            p.GetValue(Common.Verbose) ? m => Console.Error.WriteLine(m) : null);
        string? modelDir = Common.ResolveModel(p, p.GetValue(Model)), preset = p.GetValue(Config),
            resume = p.GetValue(Resume);
        if ((modelDir is null) == (preset is null) && resume is null)
            throw new ArgumentException("give exactly one of --model DIR (fine-tune) or --config SIZE (from scratch)");
        var options = new TrainingOptions
        {
            Epochs = p.GetValue(Epochs), MaxSteps = p.GetValue(MaxSteps), LearningRate = p.GetValue(Lr),
            WeightDecay = p.GetValue(WeightDecay),
            WarmupSteps = p.GetValue(Warmup), BatchSize = p.GetValue(BatchSize), BlockSize = p.GetValue(BlockSize),
            GradientAccumulationSteps = p.GetValue(GradAccum), MaxGradNorm = p.GetValue(MaxGradNorm),
            EvalSplit = p.GetValue(EvalSplit),
            Seed = p.GetValue(Seed), SaveDType = p.GetValue(SaveDType)!, Dropout = p.GetValue(DropoutOpt),
        };
        options.Validate();

        // The model: a checkpoint to resume, a folder to fine-tune, or a fresh GPT-2 of the asked shape.
        Gpt2Parameters parameters;
        if (resume is not null) parameters = Gpt2Parameters.Load(resume);
        else if (modelDir is not null) parameters = Gpt2Parameters.Load(modelDir);
        else
        {
            var cfg = Gpt2Config.Preset(preset!);
            cfg = cfg with
            {
                NLayer = p.GetValue(NLayer) ?? cfg.NLayer, NHead = p.GetValue(NHead) ?? cfg.NHead,
                NEmbd = p.GetValue(NEmbd) ?? cfg.NEmbd, NPositions = p.GetValue(NPositions) ?? cfg.NPositions,
            };
            cfg.Validate("--config");
            parameters = Gpt2Parameters.Initialize(cfg, options.Seed);
        }
        // --tokenizer, the model's own, else bundled
        var tokenizer = Gpt2Tokenizer.ForModel(modelDir, p.GetValue(Common.Tokenizer));
        if (tokenizer.VocabSize > parameters.Config.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size " +
                $"is {parameters.Config.VocabSize}");

        string dataPath = p.GetValue(Data)!;
        if (!File.Exists(dataPath)) throw new ArgumentException($"--data {dataPath}: training text not found");
        var data = TextDataset.FromFile(dataPath, tokenizer, options.EvalSplit, options.BlockSize);
        Console.Error.WriteLine($"{dataPath}: {data.Train.Length:N0} training tokens, {data.Validation.Length:N0} " +
            "validation tokens");
        using var trainer = new Trainer(parameters, data, options, backend as Backends.Ilgpu.IlgpuBackend);
        Console.Error.WriteLine($"Device: {trainer.Engine.Device}");
        if (resume is not null) trainer.RestoreState(resume);
        var cfgUsed = trainer.Parameters.Config;   // the config the run uses (--dropout may override the file's)
        Console.Error.WriteLine($"model: {cfgUsed.NLayer} layers, {cfgUsed.NHead} heads, n_embd {cfgUsed.NEmbd}, " +
            $"n_positions {cfgUsed.NPositions}, {parameters.Count:N0} parameters; dropout embd " +
            $"{cfgUsed.EmbdPdrop:G2} attn {cfgUsed.AttnPdrop:G2} resid {cfgUsed.ResidPdrop:G2}");
        if (data.Validation.Length > 1)
            Console.Error.WriteLine("unigram baselines on the validation text: its own entropy " +
                $"{data.UnigramEntropy():F3}, the training split's add-one unigram model " +
                $"{data.UnigramCrossEntropy(parameters.Config.VocabSize):F3} nats/token");
        Console.Error.WriteLine($"{trainer.TotalSteps} steps of " +
            $"{options.BatchSize}×{options.BlockSize}×{options.GradientAccumulationSteps} tokens; lr " +
            $"{options.LearningRate:G3}, warm-up {trainer.Schedule.WarmupSteps}, cosine to " +
            $"{options.MinLearningRateRatio:G2}×");

        string outDir = p.GetValue(Out)!;
        Directory.CreateDirectory(outDir);
        RunWithProgress(trainer, outDir, ct);

        var table = new Table().AddColumns("Epoch", "Training Loss", "Validation Loss");
        foreach (var h in trainer.History)
            table.AddRow(h.Epoch.ToString(), h.TrainingLoss.ToString("F4"), h.ValidationLoss?.ToString("F4") ?? "—");
        AnsiConsole.Write(table);
        Console.WriteLine($"{trainer.TokensPerSecond:F0} tokens/s; best validation loss " +
            $"{trainer.BestValidationLoss?.ToString("F4") ?? "—"}; model in {outDir}");
        if (ct.IsCancellationRequested)
        {
            Console.Error.WriteLine($"stopped; resume with --resume {Path.Combine(outDir, "checkpoint")}");
            return 130;
        }
        return 0;
    }

    /// <summary>A Spectre progress bar on a terminal; a plain line every ten seconds when output is
    /// redirected.</summary>
    private static void RunWithProgress(Trainer trainer, string outDir, CancellationToken ct)
    {
        static string Describe(TrainingProgress r) =>
            $"epoch {r.Epoch} step {r.Step}/{r.TotalSteps} loss {r.Loss:F4} lr {r.LearningRate:G3} |g| " +
                $"{r.GradNorm:F2} {r.TokensPerSecond:F0} tok/s";
        void OnEpoch(EpochResult e) =>
            Console.Error.WriteLine($"epoch {e.Epoch}: training loss {e.TrainingLoss:F4}, validation loss " +
                $"{e.ValidationLoss?.ToString("F4") ?? "—"}");
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            var last = DateTime.MinValue;
            long? firstStep = null;
            trainer.Run(outDir, new SyncProgress<TrainingProgress>(r =>
            {
                if (DateTime.UtcNow - last < TimeSpan.FromSeconds(10) && r.Step != r.TotalSteps) return;
                last = DateTime.UtcNow;
                firstStep ??= r.Step - 1;
                var eta = TimeSpan.FromSeconds(
                    r.Elapsed.TotalSeconds / Math.Max(1, r.Step - firstStep.Value) * (r.TotalSteps - r.Step));
                Console.Error.WriteLine($"{Describe(r)} ETA {eta:hh\\:mm\\:ss}");
            }), OnEpoch, ct);
            return;
        }
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
            new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: trainer.TotalSteps);
                trainer.Run(outDir,
                    new SyncProgress<TrainingProgress>(r =>
                    { task.Value = r.Step; task.Description = Describe(r).EscapeMarkup(); }), OnEpoch, ct);
            });
    }
}
