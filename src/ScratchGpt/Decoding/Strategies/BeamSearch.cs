using ScratchGpt.Decoding.Processors;

namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// Beam search (and beam sampling with do_sample), with transformers' BeamSearchScorer bookkeeping.
///
/// Each step, for each of the num_beams running beams: log_softmax(logits) → processors (with that
/// beam's ids) → + the beam's running score. Over all beams × vocab take the best 2·num_beams
/// candidates (beam sampling: draw them, then sort). Walking them best first, an EOS candidate among
/// the first num_beams ranks closes a finished hypothesis; other candidates become the next beams
/// until num_beams are taken. Stop when the hypotheses are done (see BeamHypotheses.IsDone) or at
/// max_length, then offer the running beams as hypotheses too and return the best.
/// </summary>
public sealed class BeamSearch(ILanguageModel model, GenerationConfig config, TokenSampler sampler)
{
    public List<StepTrace>? Trace { get; init; }
    public int TraceChoices { get; init; } = 5;

    public GenerationResult Run(int[] prompt, CancellationToken ct)
    {
        int B = config.NumBeams, V = model.VocabSize, P = prompt.Length;
        int maxLength = Math.Min(config.EffectiveMaxLength(P), model.MaxPositions);
        int? eos = config.EosTokenId;
        int pad = config.PadTokenId ?? eos ?? 0;
        var list = LogitsProcessorList.From(config, P);
        var hyps = new BeamHypotheses(B, config.LengthPenalty, config.EarlyStopping, maxLength);

        // Every beam starts as the prompt; the prompt runs once and its cache is copied.
        var states = new ILanguageModelState[B];
        var spare = new ILanguageModelState[B];
        var logits = new float[B * V];   // beam b's next-token logits at [b·V, (b+1)·V)
        var beamIds = new List<int>[B];
        var beamScores = new float[B];
        var tokens = new int[B];   // each step's chosen token per beam
        try
        {
            for (int b = 0; b < B; b++)
            {
                states[b] = model.CreateState(maxLength);
                spare[b] = model.CreateState(maxLength);
                beamIds[b] = [.. prompt];
                beamScores[b] = b == 0 ? 0f : -1e9f;
            }
            states[0].Append(prompt, logits.AsSpan(0, V));
            for (int b = 1; b < B; b++)
            {
                states[b].CopyFrom(states[0]);
                logits.AsSpan(0, V).CopyTo(logits.AsSpan(b * V, V));
            }

            var scores = new float[(long)B * V];
            int curLen = P, steps = 0;
            bool done = false;
            // Cancellation ends the search after the step in flight, finishing with the beams as they are.
            while (!done && curLen < maxLength && !ct.IsCancellationRequested)
            {
                for (int b = 0; b < B; b++)
                {
                    var row = scores.AsSpan(b * V, V);
                    TokenMath.LogSoftmax(logits.AsSpan(b * V, V), row);
                    var ids = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(beamIds[b]);
                    list.Apply(ids, row);                       // processors, then warpers for beam sampling
                    if (b == 0 && Trace is not null)
                    {
                        var probs = new float[V];
                        TokenMath.Softmax(row, probs);
                        Trace.Add(new StepTrace(ids.ToArray(), SequenceStepper.TopChoices(probs, TraceChoices), -1));
                    }
                    for (int v = 0; v < V; v++) row[v] += beamScores[b];
                }

                var candidates = config.DoSample ? SampleCandidates(scores, 2 * B) : TokenMath.TopK(scores, 2 * B);
                steps++;
                int newLen = curLen + 1;

                var next = new List<(float Score, int Token, int Beam)>(B);
                for (int rank = 0; rank < candidates.Length && next.Count < B; rank++)
                {
                    var (index, score) = candidates[rank];
                    int beam = index / V, token = index % V;
                    if (token == eos)
                    {
                        if (rank >= B) continue;
                        hyps.Add(beamIds[beam].ToArray(), score, newLen - P);
                    }
                    else next.Add((score, token, beam));
                }
                done = hyps.IsDone(candidates[0].Value, newLen, P);

                // Reorder: beam i continues parent next[i].Beam; copy caches through the spare set.
                var newIds = new List<int>[B];
                for (int i = 0; i < B; i++)
                {
                    var (score, token, parent) = next[i];
                    spare[i].CopyFrom(states[parent]);
                    newIds[i] = [.. beamIds[parent], token];
                    beamScores[i] = score;
                }
                (states, spare) = (spare, states);
                beamIds = newIds;
                curLen = newLen;
                if (done || curLen >= maxLength) break;
                // All beams take their next token in one batched step: the weights are read once, not once per beam.
                for (int i = 0; i < B; i++) tokens[i] = next[i].Token;
                model.AppendEach(states, tokens, logits);
            }

            if (!done)
                for (int b = 0; b < B; b++) hyps.Add(beamIds[b].ToArray(), beamScores[b], beamIds[b].Count - P);

            var best = hyps.BestFirst().Take(config.NumReturnSequences).ToList();
            // Rows: hypothesis, one EOS if shorter than the widest, then padding.
            int width = Math.Min(best.Max(h => h.Tokens.Length) + 1, maxLength);
            var rows = best.Select(h =>
            {
                var row = new int[width];
                Array.Fill(row, pad);
                h.Tokens.CopyTo(row, 0);
                if (h.Tokens.Length < width && eos is int e) row[h.Tokens.Length] = e;
                return new GeneratedSequence(row, row[P..], (double)(float)h.Score);
            }).ToList();
            return new GenerationResult(prompt, rows, steps, Trace ?? [], Stopped: !done && curLen < maxLength);
        }
        finally
        {
            foreach (var s in states) s?.Dispose();
            foreach (var s in spare) s?.Dispose();
        }
    }

    /// <summary>Beam sampling: draw candidates from softmax over all beams × vocab without replacement, then sort by
    /// score.</summary>
    private (int Index, float Value)[] SampleCandidates(float[] scores, int count)
    {
        var probs = new float[scores.Length];
        TokenMath.Softmax(scores, probs);
        return sampler.SampleWithoutReplacement(probs, count)
            .Select(i => (i, scores[i])).OrderByDescending(t => t.Item2).ToArray();
    }
}
