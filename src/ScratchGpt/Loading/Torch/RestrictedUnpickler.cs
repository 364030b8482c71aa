using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace ScratchGpt.Loading.Torch;

/// <summary>
/// A pickle reader that never runs code. Python's pickle is a small stack machine whose GLOBAL and
/// REDUCE opcodes import and call arbitrary functions; that is how a malicious pytorch_model.bin runs
/// os.system. This machine knows a fixed list of globals — the ones torch.save writes for a state dict
/// (OrderedDict, the tensor rebuild functions, the typed storage classes) — and builds plain records
/// for them instead of calling anything. Any other global is refused, naming it.
/// </summary>
public sealed class RestrictedUnpickler
{
    private static readonly Dictionary<string, SafetensorsDType> StorageTypes = new()
    {
        ["FloatStorage"] = SafetensorsDType.F32, ["HalfStorage"] = SafetensorsDType.F16,
        ["BFloat16Storage"] = SafetensorsDType.BF16,
        ["DoubleStorage"] = SafetensorsDType.F64, ["LongStorage"] = SafetensorsDType.I64,
            ["IntStorage"] = SafetensorsDType.I32,
        ["ShortStorage"] = SafetensorsDType.I16, ["CharStorage"] = SafetensorsDType.I8,
            ["ByteStorage"] = SafetensorsDType.U8,
        ["BoolStorage"] = SafetensorsDType.Bool,
    };

    private static readonly HashSet<string> AllowedGlobals =
    [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
            "torch._utils._rebuild_parameter",
        .. StorageTypes.Keys.Select(k => "torch." + k),
    ];

    private const int MaxStack = 1 << 20, MaxMemo = 1 << 20;
    private sealed class Mark;
    private static readonly Mark MarkObject = new();

    private readonly byte[] _data;
    private readonly string _source;
    private int _pos;
    private readonly List<object?> _stack = [];
    private readonly Dictionary<long, object?> _memo = [];

    /// <summary>Turns a persistent id tuple into an object (torch.save's storages).</summary>
    public Func<object?[], object>? PersistentLoad { get; init; }

    public RestrictedUnpickler(byte[] data, string source, int start = 0)
    {
        _data = data; _source = source; _pos = start;
    }

    /// <summary>Where the reader stopped (one past the STOP opcode): the legacy format puts more pickles after
    /// it.</summary>
    public int Position => _pos;

    private ModelLoadException Error(string message) => new($"{_source}: {message}");

    public object? Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("pickle ends without a STOP opcode (truncated file)");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: Byte(); break;                                   // PROTO n
                case 0x95:
                    Bytes(8);
                    break;
                // FRAME len (protocol 4 framing: just a hint)
                case (byte)'.':
                    return _stack.Count == 1 ? Pop()
                        : throw Error($"pickle stops with {_stack.Count} objects on the stack");
                case (byte)'(': Push(MarkObject); break;                     // MARK
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;                                // NEWTRUE
                case 0x89: Push(false); break;                               // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break;   // BININT
                case (byte)'K': Push((long)Byte()); break;                                              // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break;  // BININT2
                case 0x8a: Push(Long(Byte())); break;                                                   // LONG1
                case 0x8b: Push(Long(Length(BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))))); break; // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break;            // BINFLOAT
                // BINUNICODE
                case (byte)'X':
                    Push(Utf8(Length(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))));
                    break;
                case 0x8c:
                    Push(Utf8(Byte()));
                    break;
                // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(Length(BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8))))); break; // BINUNICODE8
                case (byte)'U':
                    Push(Encoding.Latin1.GetString(Bytes(Byte())));
                    break;
                // SHORT_BINSTRING
                // BINSTRING
                case (byte)'T':
                    Push(Encoding.Latin1.GetString(Bytes(Length(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))))));
                    break;
                case (byte)'C':
                    Push(Bytes(Byte()).ToArray());
                    break;
                // SHORT_BINBYTES
                // BINBYTES
                case (byte)'B':
                    Push(Bytes(Length(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))).ToArray());
                    break;
                case (byte)')': Push(Array.Empty<object?>()); break;         // EMPTY_TUPLE
                case 0x85: Push(new[] { Pop() }); break;                     // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }          // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)'t': Push(PopToMark().ToArray()); break;          // TUPLE
                case (byte)']': Push(new List<object?>()); break;            // EMPTY_LIST
                case (byte)'l': Push(PopToMark()); break;                    // LIST
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; }                   // APPEND
                case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
                case (byte)'}': Push(new PickleDict()); break;               // EMPTY_DICT
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek()).Add(new(Key(k), v)); break; } // SETITEM
                case (byte)'u':                                              // SETITEMS
                {
                    var items = PopToMark();
                    if (items.Count % 2 != 0) throw Error("SETITEMS with an odd number of items");
                    var d = AsDict(Peek());
                    for (int i = 0; i < items.Count; i += 2) d.Add(new(Key(items[i]), items[i + 1]));
                    break;
                }
                case (byte)'q': _memo[Byte()] = Peek(); break;                                          // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(); break;                                          // MEMOIZE
                case (byte)'h': Push(Memo(Byte())); break;                                              // BINGET
                case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))); break;   // LONG_BINGET
                case (byte)'c':
                    Push(Global(Line(), Line()));
                    break;
                // GLOBAL "module\nname\n"
                // STACK_GLOBAL
                case 0x93:
                    { var name = Pop(); var module = Pop(); Push(Global(module as string, name as string)); break; }
                case (byte)'Q':                                                                          // BINPERSID
                {
                    if (Pop() is not object?[] pid) throw Error("persistent id is not a tuple");
                    Push((PersistentLoad
                        ?? throw Error("pickle uses persistent ids, which this file type does not allow"))(pid));
                    break;
                }
                case (byte)'R':
                    { var args = Pop(); var f = Pop(); Push(
                        Call(f, args as object?[] ?? throw Error("REDUCE arguments are not a tuple"))); break; }
                case (byte)'b':                                                                          // BUILD
                {
                    var state = Pop();
                    // A state dict's OrderedDict carries a '_metadata' attribute (module versions); it is plain data
                    // and is dropped.
                    if (Peek() is not PickleDict || state is not (null or PickleDict))
                        throw Error("BUILD (setting an object's state) is only allowed as an OrderedDict's " +
                            "attribute dict");
                    break;
                }
                case 0x81:
                    case 0x92:
                        throw Error("NEWOBJ (creating an instance of a class) is not allowed in a state dict");
                default:
                    throw Error($"pickle opcode 0x{op:x2} at byte {_pos - 1} is not supported (a torch.save state " +
                        "dict does not use it)");
            }
        }
    }

    private object Global(string? module, string? name)
    {
        if (module is null || name is null) throw Error("STACK_GLOBAL with non-string operands");
        var g = new PickleGlobal(module, name);
        if (!AllowedGlobals.Contains(g.ToString()))
            throw Error($"pickle refers to global '{g}', which ScratchGpt refuses to load (only PyTorch state-dict " +
                "tensors are read; nothing is executed)");
        return g;
    }

    /// <summary>The only calls a state dict makes, done as data: no Python function is run.</summary>
    private object Call(object? f, object?[] args)
    {
        if (f is not PickleGlobal g) throw Error("REDUCE applied to something that is not an allowed global");
        switch (g.ToString())
        {
            case "collections.OrderedDict" when args.Length == 0: return new PickleDict();
            case "torch._utils._rebuild_tensor_v2" when args.Length >= 4:
            case "torch._utils._rebuild_tensor" when args.Length == 4:
                if (args[0] is not TorchStorage storage) throw Error($"{g}: first argument is not a storage");
                long offset = args[1] is long o ? o : throw Error($"{g}: storage offset is not an integer");
                long[] shape = Ints(args[2], g), stride = Ints(args[3], g);
                if (shape.Length != stride.Length) throw Error($"{g}: shape and stride have different lengths");
                return new TorchTensor(storage, offset, shape, stride);
            case "torch._utils._rebuild_parameter" when args.Length >= 1 && args[0] is TorchTensor t: return t;
            default: throw Error($"call of {g} with {args.Length} arguments is not part of a state dict");
        }
    }

    private long[] Ints(object? o, PickleGlobal g) => o is object?[] items && items.All(i => i is long)
        ? items.Select(i => (long)i!).ToArray()
        : throw Error($"{g}: shape/stride is not a tuple of integers");

    private object Key(object? k) => k ?? throw Error("dictionary key is None");
    private List<object?> AsList(object? o) =>
        o as List<object?> ?? throw Error("APPEND to something that is not a list");
    private PickleDict AsDict(object? o) => o as PickleDict ?? throw Error("SETITEM on something that is not a dict");
    private object? Memo(long i) =>
        _memo.TryGetValue(i, out var v) ? v : throw Error($"memo entry {i} used before it was stored");

    private void Push(object? o)
    {
        if (_stack.Count >= MaxStack || _memo.Count >= MaxMemo) throw Error("pickle is too deeply nested or too large");
        _stack.Add(o);
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || _stack[^1] is Mark) throw Error($"pickle stack underflow at byte {_pos - 1}");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Error($"pickle stack underflow at byte {_pos - 1}");

    private List<object?> PopToMark()
    {
        int m = _stack.FindLastIndex(o => o is Mark);
        if (m < 0) throw Error("pickle has no MARK to pop to");
        var items = _stack.GetRange(m + 1, _stack.Count - m - 1);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private byte Byte() => Bytes(1)[0];

    private ReadOnlySpan<byte> Bytes(int n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Error("pickle is truncated (an operand runs past the end)");
        var span = _data.AsSpan(_pos, n);
        _pos += n;
        return span;
    }

    private int Length(long n) =>
        n >= 0 && n <= _data.Length - _pos ? (int)n
        : throw Error($"pickle declares a {n}-byte value past the end of the data");
    private int Length(ulong n) =>
        n <= (ulong)(_data.Length - _pos) ? (int)n
        : throw Error($"pickle declares a {n}-byte value past the end of the data");

    private string Utf8(int n)
    {
        try { return new UTF8Encoding(false, true).GetString(Bytes(n)); }
        catch (DecoderFallbackException) { throw Error("pickle string is not valid UTF-8"); }
    }

    private string Line()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Error("GLOBAL operand has no newline (truncated)");
        string s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    /// <summary>A little-endian two's-complement integer; values past 64 bits are refused.</summary>
    private object Long(int n)
    {
        var v = new BigInteger(Bytes(n), isUnsigned: false, isBigEndian: false);
        return v >= long.MinValue && v <= long.MaxValue ? (long)v : v;
    }

    /// <summary>The dtype a torch storage class stands for.</summary>
    public static bool TryStorageType(object? o, out SafetensorsDType dtype)
    {
        dtype = default;
        return o is PickleGlobal { Module: "torch" } g && StorageTypes.TryGetValue(g.Name, out dtype);
    }
}
