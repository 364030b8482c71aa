using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace ScratchGpt.Loading.Hub;

/// <summary>The Hub refused or failed a request; the message says what to do.</summary>
public sealed class HubException(string message) : IOException(message);
