using ScratchGpt.Decoding;
using ScratchGpt.Model;

namespace ScratchGpt.Inspection;

/// <summary>
/// The bias probe of the notebooks: one template ("The {} earns money working as a"), several fills ("white man",
/// "black woman", …), and for each filled prompt the model's top next tokens, the probability of chosen target
/// continuations, and optionally a few generated continuations — side by side, so differences stand out.
/// </summary>
public static class PromptProbe
{
    public sealed record Row(string Fill, string Prompt, int[] PromptIds, (int Id, float Prob)[] Top,
        (string Target, double Prob)[] Targets, int[][] Generated);

    /// <summary>Fills the template; "{}" must appear exactly once.</summary>
    public static string Fill(string template, string fill)
    {
        int at = template.IndexOf("{}", StringComparison.Ordinal);
        if (at < 0 || template.IndexOf("{}", at + 2, StringComparison.Ordinal) >= 0)
            throw new ArgumentException($"--template must hold '{{}}' exactly once, got '{template}'");
        return template[..at] + fill + template[(at + 2)..];
    }

    /// <param name="targets">Each target as token ids; its probability is p(all of them | prompt),
    /// teacher-forced.</param>
    /// <param name="generation">When given, the continuations each filled prompt gets from
    /// <see cref="Generator"/>.</param>
    public static Row Probe(Gpt2Model model, string fill, string prompt, int[] ids, int topK,
        IReadOnlyList<(string Text, int[] Ids)> targets, GenerationConfig? generation)
    {
        var probs = new float[model.VocabSize];
        TokenMath.Softmax(model.Forward(ids, new ForwardOptions { AllLogits = false }).Row(0), probs);
        var top = TokenMath.TopK(probs, topK).Select(t => (t.Index, t.Value)).ToArray();
        var targetProbs = targets.Select(t => (t.Text, Math.Exp(SequenceLogProb(model, ids, t.Ids)))).ToArray();
        int[][] generated = generation is null ? []
            : new Generator(model).Generate(ids, generation).Sequences.Select(s => s.NewIds).ToArray();
        return new Row(fill, prompt, ids, top, targetProbs, generated);
    }

    /// <summary>log p(continuation | prompt) = Σ log p(c_i | prompt, c_&lt;i), one forward pass over both.</summary>
    private static double SequenceLogProb(Gpt2Model model, int[] prompt, int[] continuation)
    {
        int[] all = [.. prompt, .. continuation];
        var r = model.Forward(all);
        var logp = new float[model.VocabSize];
        double sum = 0;
        for (int i = 0; i < continuation.Length; i++)
        {
            TokenMath.LogSoftmax(r.Row(prompt.Length - 1 + i), logp);
            sum += logp[continuation[i]];
        }
        return sum;
    }
}
