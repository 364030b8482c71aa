using System.Reflection;
using System.Reflection.Emit;

namespace ScratchGpt.Tests;

/// <summary>
/// Which layers of ScratchGpt a type reaches, read from the compiled assembly: its base type, interfaces, fields,
/// signatures, and every type, method and field its IL names (lambdas and iterators are nested types, so they
/// count for the type that wrote them). A layer is the namespace below ScratchGpt: Loading, Tokenization, Model,
/// Backends, Kernels, Decoding, Training, Inspection, Cli.
/// </summary>
public static class LayerDependencies
{
    /// <summary>The rule README states: each layer may use only the ones listed (and itself).</summary>
    public static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Kernels"] = [],
        ["Loading"] = [],
        ["Tokenization"] = ["Loading"],
        ["Backends"] = ["Loading", "Kernels"],
        ["Decoding"] = [],
        ["Model"] = ["Loading", "Tokenization", "Backends", "Decoding"],
        ["Training"] = ["Loading", "Tokenization", "Backends", "Kernels", "Model", "Decoding"],
        ["Inspection"] = ["Loading", "Tokenization", "Model", "Decoding"],
    };

    public static string? LayerOf(Type t)
    {
        while (t.IsNested) t = t.DeclaringType!;
        string ns = t.Namespace ?? "";
        if (!ns.StartsWith("ScratchGpt.", StringComparison.Ordinal)) return null;
        return ns["ScratchGpt.".Length..].Split('.')[0];
    }

    /// <summary>"From.Type → Layer (via Member)" for every reference that breaks <see cref="Allowed"/>.</summary>
    public static List<string> Violations(IEnumerable<Type> types)
    {
        var bad = new List<string>();
        foreach (var t in types)
        {
            if (LayerOf(t) is not { } from || !Allowed.TryGetValue(from, out var ok)) continue;
            foreach (var (used, via) in Referenced(t))
                if (LayerOf(used) is { } to && to != from && !ok.Contains(to))
                    bad.Add($"{t.FullName} ({from}) → {used.FullName} ({to}) via {via}");
        }
        return bad.Distinct().ToList();
    }

    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance
                                     | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static IEnumerable<(Type, string)> Referenced(Type t)
    {
        if (t.BaseType is { } b) foreach (var x in Expand(b)) yield return (x, "base type");
        foreach (var i in t.GetInterfaces()) foreach (var x in Expand(i)) yield return (x, "interface");
        foreach (var f in t.GetFields(All)) foreach (var x in Expand(f.FieldType)) yield return (x, "field " + f.Name);
        foreach (var m in t.GetMethods(All).Cast<MethodBase>().Concat(t.GetConstructors(All)))
        {
            if (m is MethodInfo mi) foreach (var x in Expand(mi.ReturnType)) yield return (x, m.Name + " return");
            foreach (var p in m.GetParameters())
                foreach (var x in Expand(p.ParameterType)) yield return (x, m.Name + " parameter");
            foreach (var (x, what) in FromIl(m)) yield return (x, $"{m.Name}: {what}");
        }
    }

    /// <summary>A type with its element and generic-argument types.</summary>
    private static IEnumerable<Type> Expand(Type t)
    {
        if (t.HasElementType) { foreach (var x in Expand(t.GetElementType()!)) yield return x; yield break; }
        if (t.IsGenericParameter) yield break;
        yield return t.IsGenericType ? t.GetGenericTypeDefinition() : t;
        if (t.IsGenericType) foreach (var a in t.GetGenericArguments()) foreach (var x in Expand(a)) yield return x;
    }

    private static readonly Dictionary<short, OpCode> OpCodeByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>The types behind every token operand in the method's IL (calls, field accesses, newobj, casts,
    /// ldtoken).</summary>
    private static IEnumerable<(Type, string)> FromIl(MethodBase m)
    {
        byte[]? il;
        try { il = m.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { il = null; }
        if (il is null) yield break;
        Type[]? typeArgs = m.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        Type[]? methodArgs = m.IsGenericMethod ? m.GetGenericArguments() : null;
        int pos = 0;
        while (pos < il.Length)
        {
            short value = il[pos] == 0xFE ? (short)(0xFE00 | il[pos + 1]) : il[pos];
            pos += il[pos] == 0xFE ? 2 : 1;
            var op = OpCodeByValue[value];
            switch (op.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    pos += 1;
                    break;
                case OperandType.InlineVar: pos += 2; break;
                case OperandType.InlineI8 or OperandType.InlineR: pos += 8; break;
                case OperandType.InlineSwitch: pos += 4 + 4 * BitConverter.ToInt32(il, pos); break;
                case OperandType.InlineField or OperandType.InlineMethod
                    or OperandType.InlineType or OperandType.InlineTok:
                {
                    int token = BitConverter.ToInt32(il, pos);
                    pos += 4;
                    MemberInfo? member;
                    try { member = m.Module.ResolveMember(token, typeArgs, methodArgs); }
                    catch (Exception e) when (e is ArgumentException or BadImageFormatException) { member = null; }
                    var types = member switch
                    {
                        Type ty => Expand(ty),
                        MethodBase mb =>
                            Expand(mb.DeclaringType!)
                            .Concat(mb.IsGenericMethod ? mb.GetGenericArguments().SelectMany(Expand) : []),
                        FieldInfo f => Expand(f.DeclaringType!).Concat(Expand(f.FieldType)),
                        _ => [],
                    };
                    foreach (var x in types) yield return (x, $"{op.Name} {member?.Name}");
                    break;
                }
                default: pos += 4; break;
            }
        }
    }
}
