import DinoTensor

// Dimension letters: B batch, H heads, N tokens (CLS, registers, patches), h x w patch grid.

/// Where one token looks, read from a block's attention probabilities `[B, H, N, N]`: the row of
/// a query token restricted to the patch columns, a `[h * w]` map over the patch grid.
public enum AttentionMaps {
    /// Row `query` of head `head` of image `image`, patch columns only (after `prefixTokens`): `[h * w]`.
    public static func patchRow(_ attention: Tensor, image: Int, head: Int, query: Int, prefixTokens: Int) -> [Float] {
        precondition(attention.rank == 4 && attention.shape[2] == attention.shape[3], "attention maps need [B, H, N, N], got \(attention.shape)")
        let (heads, n) = (attention.shape[1], attention.shape[2])
        let base = ((image * heads + head) * n + query) * n
        return Array(attention.scalars[(base + prefixTokens)..<(base + n)])
    }

    /// `patchRow` averaged over the heads: `[h * w]`.
    public static func meanPatchRow(_ attention: Tensor, image: Int, query: Int, prefixTokens: Int) -> [Float] {
        let heads = attention.shape[1]
        let rows = (0..<heads).map { patchRow(attention, image: image, head: $0, query: query, prefixTokens: prefixTokens) }
        var out = [Float](repeating: 0, count: rows[0].count)
        for values in rows { for j in 0..<out.count { out[j] += values[j] / Float(rows.count) } }
        return out
    }
}
