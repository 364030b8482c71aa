using System.Text.RegularExpressions;

namespace ScratchGpt.Loading.Hub;

/// <summary>A Hub repository name: "gpt2" or "org/name" (letters, digits, '-', '_', '.'; no "..").</summary>
public static partial class HubModelId
{
    [GeneratedRegex(@"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")]
    private static partial Regex Pattern();

    public static bool IsValid(string id) => Pattern().IsMatch(id) && !id.Contains("..") && !id.EndsWith(".git");

    /// <summary>The cache folder name huggingface_hub uses: models--org--name.</summary>
    public static string CacheFolderName(string id) => "models--" + id.Replace("/", "--");

    public static void Validate(string id)
    {
        if (!IsValid(id))
            throw new ArgumentException($"'{id}' is neither a model folder nor a Hub model id (like gpt2 or org/name)");
    }

    public static void ValidateRevision(string revision)
    {
        if (revision.Length == 0 || revision.Length > 255 || revision.Contains("..") || revision.StartsWith('/')
            || revision.Any(c => char.IsControl(c) || c == '\\'))
            throw new ArgumentException($"--revision '{revision}' is not a valid branch, tag or commit");
    }
}
