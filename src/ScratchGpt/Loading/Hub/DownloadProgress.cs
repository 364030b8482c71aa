using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace ScratchGpt.Loading.Hub;

/// <summary>Progress of one file: bytes so far, total (if known), and the rate.</summary>
public sealed record DownloadProgress(string File, long Bytes, long? Total, double BytesPerSecond);
