import DinoModel
import DinoTensor
import Foundation
import Testing

/// Token norms, pooling, attention rows and class scores: the analyses the CLI prints, on
/// hand-made tensors whose answers are known.
@Suite("Feature analyses")
struct FeatureAnalysisTests {
    @Test("token norms: CLS, registers and patches; median + 6 x MAD flags the artifact patch")
    func tokenNorms() {
        // CLS (norm 5), one register (norm 13), then 9 patches on a 3 x 3 grid: norms 1...9 except
        // patch 4 (row 1, column 1) at 100.
        var rows: [[Float]] = [[3, 4], [5, 12]]
        for p in 0..<9 { rows.append(p == 4 ? [60, 80] : [Float(p + 1), 0]) }
        let norms = TokenNorms(tokens: Tensor(shape: [11, 2], scalars: rows.flatMap { $0 }), registerCount: 1)
        #expect(norms.classToken == 5 && norms.registers == [13])
        #expect(norms.patches == [1, 2, 3, 4, 100, 6, 7, 8, 9])
        #expect(norms.medianPatchNorm == 6 && norms.maxPatchNorm == 100)
        // |norm - 6| sorted: 0 1 2 2 3 3 4 5 94 -> the middle one is 3.
        #expect(norms.medianAbsoluteDeviation == 3)
        #expect(norms.defaultThreshold == 24)
        #expect(norms.outliers(gridWidth: 3) == [TokenNorms.Outlier(row: 1, column: 1, norm: 100)])
        #expect(norms.outliers(above: 7.5, gridWidth: 3).map { [$0.row, $0.column] } == [[1, 1], [2, 1], [2, 2]])
        // A flat map has no outliers: the MAD floor keeps the threshold above the median.
        let flat = TokenNorms(tokens: Tensor(shape: [5, 1], scalars: [1, 2, 2, 2, 2]), registerCount: 0)
        #expect(flat.outliers(gridWidth: 2).isEmpty)
    }

    @Test("the token mean averages every token of each image; the spatial mean every position")
    func pooling() {
        // [B = 2, N = 2, C = 2].
        let tokens = Tensor(shape: [2, 2, 2], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(tokens.tokenMean() == Tensor(shape: [2, 2], scalars: [2, 3, 6, 7]))
        let map = Tensor(shape: [1, 2, 2, 2], scalars: [1, 2, 3, 6, -1, -1, -1, -1])
        #expect(map.spatialMean() == Tensor(shape: [1, 2], scalars: [3, -1]))
    }

    @Test("attention rows: a query's patch columns per head and their mean over heads")
    func attentionRows() {
        // [B = 1, H = 2, N = 3, N = 3], one prefix token: each row's last two entries are patches.
        let attention = Tensor(shape: [1, 2, 3, 3], scalars: [0.5, 0.2, 0.3, 0, 1, 0, 0, 0, 1,
                                                               0.1, 0.6, 0.3, 0, 0, 1, 1, 0, 0])
        #expect(AttentionMaps.patchRow(attention, image: 0, head: 1, query: 0, prefixTokens: 1) == [0.6, 0.3])
        let mean = AttentionMaps.meanPatchRow(attention, image: 0, query: 0, prefixTokens: 1)
        #expect(mean.count == 2 && abs(mean[0] - 0.4) < 1e-6 && mean[1] == 0.3, "\(mean)")
    }

    @Test("class scores: softmax probabilities, most probable first")
    func classScores() {
        let top = ClassScore.top(2, logits: [0, Float(log(3.0)), -1000], labels: ["cat", "dog", "car"])
        #expect(top.map(\.label) == ["dog", "cat"] && top.map(\.index) == [1, 0])
        #expect(abs(top[0].probability - 0.75) < 1e-6 && abs(top[1].probability - 0.25) < 1e-6)
        // Large logits do not overflow.
        #expect(ClassScore.top(1, logits: [1000, 999], labels: ["a", "b"])[0].probability > 0.7)
    }
}
