import DinoLayers
import DinoTensor
import Dispatch
import Foundation

// Dimension letters: C head channels, K classes, h x w the patch grid of one image and
// P = h * w, H x W its label map, N = the sum of P over the batch, M = the labelled
// (non-ignored) pixels of the batch.

/// One training example: the head input of an image and its labels.
public struct TrainingSample: Sendable {
    /// Head input `[C, h, w]` (the concatenated block maps of one image).
    public var features: Tensor
    /// Labels at the size the logits are upsampled to (the prepared image content).
    public var labels: LabelMap

    /// A sample from its features and labels.
    public init(features: Tensor, labels: LabelMap) {
        self.features = features
        self.labels = labels
    }
}

/// Gradients of the four trainable parameter vectors of a head.
public struct HeadGradients: Sendable, Equatable {
    /// `[K, C]`.
    public var classifierWeight: [Float]
    /// `[K]`.
    public var classifierBias: [Float]
    /// `[C]`.
    public var batchNormWeight: [Float]
    /// `[C]`.
    public var batchNormBias: [Float]
}

/// The per-channel statistics BatchNorm used on a training batch.
public struct BatchStatistics: Sendable, Equatable {
    /// Mean over every position of every image, `[C]`.
    public var mean: [Float]
    /// Biased variance (divided by `N`), `[C]`, the one used to normalise.
    public var variance: [Float]
    /// Positions `N` the statistics cover.
    public var count: Int
}

/// The training objective of a linear probe and its gradient.
///
/// Forward, per batch: BatchNorm in training mode (statistics over all `N` grid positions of
/// the batch, biased variance), the 1x1 convolution, logits bilinearly upsampled
/// (align_corners False) to each image's label size, softmax cross-entropy with the ignore
/// index 255, averaged over the `M` labelled pixels of the batch.
///
/// ref: mmseg `BaseDecodeHead.losses` (upsample the logits to the label size, then
/// `CrossEntropyLoss`); the mean over labelled pixels is PyTorch's `F.cross_entropy` and mmseg's
/// `avg_non_ignore=True` (mmseg's default divides by all pixels, ignored ones included, which
/// rescales the gradient by the labelled fraction of each batch).
public enum ProbeLoss {
    /// The loss, the gradients of the trainable parameters, and the batch statistics.
    ///
    /// A batch with no labelled pixel has loss 0 and zero gradients.
    public static func evaluate(_ head: SegmentationHead, batch: [TrainingSample], threads: Int = 1)
        throws(SegmentationError) -> (loss: Double, gradients: HeadGradients, statistics: BatchStatistics)
    {
        let (c, k) = (head.channels, head.numClasses)
        for (i, sample) in batch.enumerated() {
            guard sample.features.rank == 3, sample.features.shape[0] == c else {
                throw .sizeMismatch(what: "training sample \(i) features", expected: "[\(c), h, w]", actual: "\(sample.features.shape)")
            }
            try sample.labels.validate(classes: k, path: "training sample \(i) labels")
        }
        let statistics = try batchStatistics(batch, channels: c)
        let labelled = batch.reduce(0) { $0 + $1.labels.labels.lazy.filter { $0 != LabelMap.ignoreIndex }.count }
        var gradients = HeadGradients(
            classifierWeight: [Float](repeating: 0, count: k * c), classifierBias: [Float](repeating: 0, count: k),
            batchNormWeight: [Float](repeating: 0, count: c), batchNormBias: [Float](repeating: 0, count: c))
        guard labelled > 0 else { return (0, gradients, statistics) }

        let inverseStd = statistics.variance.map { 1 / ($0 + head.epsilon).squareRoot() }
        let results = ResultSlots<ImageGradients>(count: batch.count)
        let work: @Sendable (Int) -> Void = { i in
            results.set(i, Result { () throws(SegmentationError) -> ImageGradients in
                try imageGradients(head, batch[i], mean: statistics.mean, inverseStd: inverseStd, scale: 1 / Double(labelled))
            })
        }
        // At most `threads` workers, each taking every `workers`-th image.
        let workers = max(1, min(threads, batch.count))
        if workers > 1 {
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for i in stride(from: worker, to: batch.count, by: workers) { work(i) }
            }
        } else {
            for i in batch.indices { work(i) }
        }
        // Summed in batch order, so the result does not depend on thread timing.
        var lossSum = 0.0
        for i in batch.indices {
            let part = try results.get(i)
            lossSum += part.lossSum
            for j in 0..<(k * c) { gradients.classifierWeight[j] += part.gradients.classifierWeight[j] }
            for j in 0..<k { gradients.classifierBias[j] += part.gradients.classifierBias[j] }
            for j in 0..<c {
                gradients.batchNormWeight[j] += part.gradients.batchNormWeight[j]
                gradients.batchNormBias[j] += part.gradients.batchNormBias[j]
            }
        }
        return (lossSum / Double(labelled), gradients, statistics)
    }

    /// Mean and biased variance per channel over every position of the batch (two passes, in
    /// double precision).
    static func batchStatistics(_ batch: [TrainingSample], channels c: Int) throws(SegmentationError) -> BatchStatistics {
        let n = batch.reduce(0) { $0 + $1.features.count / max(c, 1) }
        guard n >= 2 else {
            throw .invalidSetting(name: "training batch", reason: "BatchNorm needs more than one position per channel, the batch has \(n)")
        }
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        for sample in batch {
            let p = sample.features.count / c
            for ch in 0..<c {
                var s = 0.0
                for j in 0..<p { s += Double(sample.features.scalars[ch * p + j]) }
                mean[ch] += s
            }
        }
        for ch in 0..<c { mean[ch] /= Double(n) }
        for sample in batch {
            let p = sample.features.count / c
            for ch in 0..<c {
                var s = 0.0
                for j in 0..<p {
                    let d = Double(sample.features.scalars[ch * p + j]) - mean[ch]
                    s += d * d
                }
                variance[ch] += s
            }
        }
        return BatchStatistics(mean: mean.map { Float($0) }, variance: variance.map { Float($0 / Double(n)) }, count: n)
    }

    struct ImageGradients {
        var lossSum: Double
        var gradients: HeadGradients
    }

    /// One image's share: the sum of its pixels' losses and its gradient contributions (already
    /// multiplied by `scale = 1 / M`).
    static func imageGradients(_ head: SegmentationHead, _ sample: TrainingSample, mean: [Float], inverseStd: [Float],
                               scale: Double) throws(SegmentationError) -> ImageGradients {
        let (c, k) = (head.channels, head.numClasses)
        let (h, w) = (sample.features.shape[1], sample.features.shape[2])
        let p = h * w
        // Normalised input xhat and BatchNorm output y, [C, P].
        var normalized = [Float](repeating: 0, count: c * p)
        var y = [Float](repeating: 0, count: c * p)
        for ch in 0..<c {
            let (m, s, g, b) = (mean[ch], inverseStd[ch], head.batchNormWeight[ch], head.batchNormBias[ch])
            for j in 0..<p {
                let xhat = (sample.features.scalars[ch * p + j] - m) * s
                normalized[ch * p + j] = xhat
                y[ch * p + j] = xhat * g + b
            }
        }
        let logits: Tensor  // [1, K, h, w]
        do {
            logits = try head.classifier()(Tensor(shape: [1, c, h, w], scalars: y))
        } catch {
            throw .layer(error)
        }
        let (lossSum, dLogits) = upsampledCrossEntropy(logits.scalars, classes: k, height: h, width: w, labels: sample.labels, scale: scale)

        // Classifier gradients: dW = dZ · yᵀ [K, C], db = row sums of dZ; then dY = Wᵀ · dZ [C, P].
        var transposedWeight = [Float](repeating: 0, count: c * k)
        for o in 0..<k { for i in 0..<c { transposedWeight[i * k + o] = head.classifierWeight[o * c + i] } }
        let weightGradient: Tensor, inputGradient: Tensor
        do {
            weightGradient = try Dense(weight: Tensor(shape: [c, p], scalars: y), bias: nil)(Tensor(shape: [k, p], scalars: dLogits))
            inputGradient = try Conv2d(weight: Tensor(shape: [c, k, 1, 1], scalars: transposedWeight), bias: nil)(
                Tensor(shape: [1, k, h, w], scalars: dLogits))
        } catch {
            throw .layer(error)
        }
        var biasGradient = [Float](repeating: 0, count: k)
        for o in 0..<k {
            var s: Float = 0
            for j in 0..<p { s += dLogits[o * p + j] }
            biasGradient[o] = s
        }
        var gammaGradient = [Float](repeating: 0, count: c), betaGradient = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            var sg: Float = 0, sb: Float = 0
            for j in 0..<p {
                let d = inputGradient.scalars[ch * p + j]
                sg += d * normalized[ch * p + j]
                sb += d
            }
            gammaGradient[ch] = sg
            betaGradient[ch] = sb
        }
        return ImageGradients(lossSum: lossSum, gradients: HeadGradients(
            classifierWeight: weightGradient.scalars, classifierBias: biasGradient,
            batchNormWeight: gammaGradient, batchNormBias: betaGradient))
    }

    /// Logits `[K, h, w]` upsampled to the label size, softmax cross-entropy per labelled pixel,
    /// and the gradient with respect to the grid logits (the adjoint of the upsampling applied
    /// to `scale * (softmax - onehot)`), computed pixel by pixel so that the `K x H x W`
    /// upsampled logits never exist at once.
    ///
    /// - Returns: the sum of the per-pixel losses (unscaled) and `dZ` `[K, h, w]`.
    static func upsampledCrossEntropy(_ z: [Float], classes k: Int, height h: Int, width w: Int, labels: LabelMap,
                                      scale: Double) -> (Double, [Float]) {
        let (outH, outW) = (labels.height, labels.width)
        let rows = BilinearTaps(input: h, output: outH), columns = BilinearTaps(input: w, output: outW)
        // Position-major copies so that the K logits of a grid cell are contiguous.
        var zt = [Float](repeating: 0, count: h * w * k)
        for o in 0..<k { for j in 0..<(h * w) { zt[j * k + o] = z[o * h * w + j] } }
        var dzt = [Float](repeating: 0, count: h * w * k)
        var logit = [Float](repeating: 0, count: k)
        var lossSum = 0.0
        let step = Float(scale)
        for oy in 0..<outH {
            let (y0, y1, ly) = (rows.low[oy], rows.high[oy], rows.fraction[oy])
            for ox in 0..<outW {
                let label = labels.labels[oy * outW + ox]
                if label == LabelMap.ignoreIndex { continue }
                let (x0, x1, lx) = (columns.low[ox], columns.high[ox], columns.fraction[ox])
                let a = (y0 * w + x0) * k, b = (y0 * w + x1) * k, c = (y1 * w + x0) * k, d = (y1 * w + x1) * k
                // Same expression and order as DinoLayers.resizeBilinear.
                var largest = -Float.infinity
                for o in 0..<k {
                    let top = zt[a + o] * (1 - lx) + zt[b + o] * lx
                    let bottom = zt[c + o] * (1 - lx) + zt[d + o] * lx
                    logit[o] = top * (1 - ly) + bottom * ly
                    largest = max(largest, logit[o])
                }
                let target = Int(label)
                let targetShifted = logit[target] - largest
                var total: Float = 0
                for o in 0..<k {
                    logit[o] = exp(logit[o] - largest)
                    total += logit[o]
                }
                lossSum += Double(log(total)) - Double(targetShifted)
                let (wa, wb, wc, wd) = ((1 - lx) * (1 - ly), lx * (1 - ly), (1 - lx) * ly, lx * ly)
                for o in 0..<k {
                    let g = (logit[o] / total - (o == target ? 1 : 0)) * step
                    dzt[a + o] += g * wa
                    dzt[b + o] += g * wb
                    dzt[c + o] += g * wc
                    dzt[d + o] += g * wd
                }
            }
        }
        var dz = [Float](repeating: 0, count: k * h * w)
        for o in 0..<k { for j in 0..<(h * w) { dz[o * h * w + j] = dzt[j * k + o] } }
        return (lossSum, dz)
    }
}

/// Source indices and weights of bilinear resizing along one axis with align_corners False.
///
/// ref: PyTorch `area_pixel_compute_source_index`: source = (o + 0.5) * in / out - 0.5,
/// clamped at 0; the same arithmetic as `DinoLayers.resizeBilinear`, which the training loss
/// must agree with (checked by the tests).
struct BilinearTaps {
    var low: [Int]
    var high: [Int]
    var fraction: [Float]

    init(input: Int, output: Int) {
        low = []
        high = []
        fraction = []
        for o in 0..<output {
            let source = max((Double(o) + 0.5) * Double(input) / Double(output) - 0.5, 0)
            let i0 = min(Int(source), input - 1)
            low.append(i0)
            high.append(min(i0 + 1, input - 1))
            fraction.append(Float(source - Double(i0)))
        }
    }
}

/// Per-item results written from parallel iterations, each slot by one iteration only.
final class ResultSlots<Value>: @unchecked Sendable {
    private var slots: [Result<Value, SegmentationError>?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ value: Result<Value, SegmentationError>) {
        lock.lock()
        slots[i] = value
        lock.unlock()
    }

    func get(_ i: Int) throws(SegmentationError) -> Value {
        lock.lock()
        let slot = slots[i]
        lock.unlock()
        guard let slot else { throw .invalidSetting(name: "training", reason: "item \(i) was not computed") }
        return try slot.get()
    }
}
