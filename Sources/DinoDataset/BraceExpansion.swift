/// Brace patterns as shells and WebDataset write shard lists: `shards/{00000..01023}.tar`
/// (numeric ranges, zero padding kept when an end has a leading zero, descending ranges
/// allowed) and `{train,val}/{0..9}.tar` (lists; several braces expand left to right); other
/// braces, such as `{abc}`, stay as written.
public enum BraceExpansion {
    /// Most names one pattern may expand to.
    public static let maxExpansions = 1_000_000

    /// The names `pattern` stands for, in order; a pattern without braces is itself.
    public static func expand(_ pattern: String) throws(DatasetError) -> [String] {
        var results: [String] = []
        try expand(Substring(pattern), prefix: "", whole: pattern, into: &results)
        return results
    }

    private static func expand(_ rest: Substring, prefix: String, whole: String, into results: inout [String]) throws(DatasetError) {
        guard let open = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) else {
            try append(prefix + rest, whole: whole, to: &results)
            return
        }
        guard rest[open] == "{" else { throw .invalidBraces(pattern: whole, reason: "'}' without a matching '{'") }
        let afterOpen = rest.index(after: open)
        guard let close = rest[afterOpen...].firstIndex(where: { $0 == "{" || $0 == "}" }), rest[close] == "}" else {
            let reason = rest[afterOpen...].contains("{") ? "nested braces are not supported" : "'{' without a matching '}'"
            throw .invalidBraces(pattern: whole, reason: reason)
        }
        let head = prefix + rest[..<open]
        let tail = rest[rest.index(after: close)...]
        for choice in try alternatives(rest[afterOpen..<close], whole: whole) {
            try expand(tail, prefix: head + choice, whole: whole, into: &results)
        }
    }

    private static func append(_ name: String, whole: String, to results: inout [String]) throws(DatasetError) {
        guard results.count < maxExpansions else {
            throw .invalidBraces(pattern: whole, reason: "expands to more than \(maxExpansions) names")
        }
        results.append(name)
    }

    /// The choices of one `{...}`: a numeric range `A..B` or a comma-separated list.
    private static func alternatives(_ body: Substring, whole: String) throws(DatasetError) -> [String] {
        if let dots = body.range(of: "..") {
            let (low, high) = (body[..<dots.lowerBound], body[dots.upperBound...])
            guard let first = Int(low), let last = Int(high) else {
                throw .invalidBraces(pattern: whole, reason: "'{\(body)}' is not a range of integers")
            }
            let count = abs(last - first) + 1
            guard count <= maxExpansions else {
                throw .invalidBraces(pattern: whole, reason: "expands to more than \(maxExpansions) names")
            }
            // Bash pads to the longer end when either end is written with a leading zero.
            let padded = [low, high].contains { $0.drop { $0 == "-" }.count > 1 && $0.drop { $0 == "-" }.first == "0" }
            let width = padded ? max(low.count, high.count) : 0
            let step = last >= first ? 1 : -1
            return stride(from: first, through: last, by: step).map { value in
                let digits = String(abs(value))
                let sign = value < 0 ? "-" : ""
                return sign + String(repeating: "0", count: max(0, width - sign.count - digits.count)) + digits
            }
        }
        // As in bash, braces around neither a range nor a list are literal text.
        guard body.contains(",") else { return ["{\(body)}"] }
        return body.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }
}
