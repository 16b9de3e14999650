import DinoLayers
import DinoModel
import DinoTensor
import Foundation
import Testing

@testable import DinoSegmentation

/// The probe's loss, gradients, BatchNorm statistics and optimisers against PyTorch autograd and
/// finite differences.
@Suite("probe training")
struct TrainingTests {
    struct Case {
        var head: SegmentationHead
        var batch: [TrainingSample]
        var file: SafetensorsFile
    }

    static let names = ["same_size", "mixed_size"]

    func load(_ name: String) throws -> Case {
        let file = try Fixtures.file("train_\(name).safetensors")
        let classes = Int(file.metadata["classes"] ?? "") ?? 0
        let head = try SegmentationHeadFile.read(Subset(file: file, names: file.tensorNames.filter { $0.hasPrefix("before.") }), file: file.path,
                                     configuration: SegmentationHeadConfiguration(layers: .last(1), classNames: DatasetClasses.numbered(classes)))
        var batch: [TrainingSample] = []
        for i in 0..<(Int(file.metadata["images"] ?? "") ?? 0) {
            let labels = try file.tensor("labels.\(i)")
            batch.append(TrainingSample(features: try file.tensor("features.\(i)"),
                                        labels: LabelMap(width: labels.shape[1], height: labels.shape[0], labels: labels.scalars.map { UInt8($0) })))
        }
        return Case(head: head, batch: batch, file: file)
    }

    /// Largest |a - b| relative to max(1, max|b|).
    func scaled(_ a: [Float], _ b: Tensor) -> Float { Difference(a, b.scalars).maxAbs / max(1, b.maxAbs) }

    @Test("loss, gradients and batch statistics equal PyTorch autograd's", arguments: names)
    func lossAndGradients(_ name: String) throws {
        let c = try load(name)
        let (loss, gradients, statistics) = try ProbeLoss.evaluate(c.head, batch: c.batch, threads: 2)
        let reference = Double(try c.file.tensor("loss").scalars[0])
        #expect(abs(loss - reference) <= 1e-5 * max(1, abs(reference)), "loss \(loss) vs \(reference)")
        let pairs: [(String, [Float])] = [
            ("decode_head.conv_seg.weight", gradients.classifierWeight), ("decode_head.conv_seg.bias", gradients.classifierBias),
            ("decode_head.bn.weight", gradients.batchNormWeight), ("decode_head.bn.bias", gradients.batchNormBias),
        ]
        var worst: Float = 0
        for (key, values) in pairs {
            let expected = try c.file.tensor("grad.\(key)")
            let error = scaled(values, expected)
            worst = max(worst, error)
            #expect(error <= 1e-5, "gradient of \(key): \(Difference(values, expected.scalars))")
        }
        print("training \(name): loss \(loss) vs PyTorch \(reference); worst gradient error \(worst) (relative to max(1, max|grad|))")
        // One step's running statistics (momentum 0.1, unbiased variance).
        var trainer = try ProbeTrainer(head: c.head, options: ProbeTrainingOptions(optimizer: .sgd(momentum: 0), weightDecay: 0,
                                                                                  schedule: LearningRateSchedule(baseRate: 1e-9, decay: .constant)),
                                       totalIterations: 1)
        try trainer.step(c.batch)
        #expect(scaled(trainer.head.runningMean, try c.file.tensor("after.running_mean")) <= 1e-6)
        #expect(scaled(trainer.head.runningVariance, try c.file.tensor("after.running_var")) <= 1e-6)
        #expect(statistics.count == c.batch.reduce(0) { $0 + $1.features.count / c.head.channels })
    }

    @Test("two AdamW and two SGD steps equal torch.optim's", arguments: names)
    func optimizerSteps(_ name: String) throws {
        let c = try load(name)
        let optimizers: [(String, ProbeOptimizer, Float, Double)] = [
            ("adamw", .adamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8), 0.05, 0.01), ("sgd", .sgd(momentum: 0.9), 1e-3, 0.1),
        ]
        for (label, optimizer, decay, rate) in optimizers {
            let options = ProbeTrainingOptions(optimizer: optimizer, weightDecay: decay, schedule: LearningRateSchedule(baseRate: rate, decay: .constant))
            var trainer = try ProbeTrainer(head: c.head, options: options, totalIterations: 2)
            let losses = [try trainer.step(c.batch), try trainer.step(c.batch)]
            let expectedLosses = try c.file.tensor("\(label).losses").scalars
            for (l, e) in zip(losses, expectedLosses) { #expect(abs(l - Double(e)) <= 1e-5 * max(1, Double(abs(e))), "\(label) loss \(l) vs \(e)") }
            let head = trainer.head
            let pairs: [(String, [Float])] = [
                ("decode_head.conv_seg.weight", head.classifierWeight), ("decode_head.conv_seg.bias", head.classifierBias),
                ("decode_head.bn.weight", head.batchNormWeight), ("decode_head.bn.bias", head.batchNormBias),
                ("running_mean", head.runningMean), ("running_var", head.runningVariance),
            ]
            for (key, values) in pairs {
                let expected = try c.file.tensor("\(label).\(key)")
                #expect(scaled(values, expected) <= 2e-6, "\(label) \(key): \(Difference(values, expected.scalars))")
            }
            #expect(head.batchesTracked == 2)
        }
    }

    /// The loss recomputed in double precision from scratch (no shared code with the library
    /// beyond the data), for finite differences.
    func referenceLoss(_ head: SegmentationHead, _ batch: [TrainingSample]) -> Double {
        let (c, k) = (head.channels, head.numClasses)
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        var n = 0
        for s in batch {
            let p = s.features.count / c
            n += p
            for ch in 0..<c { for j in 0..<p { mean[ch] += Double(s.features.scalars[ch * p + j]) } }
        }
        for ch in 0..<c { mean[ch] /= Double(n) }
        for s in batch {
            let p = s.features.count / c
            for ch in 0..<c { for j in 0..<p { variance[ch] += pow(Double(s.features.scalars[ch * p + j]) - mean[ch], 2) } }
        }
        for ch in 0..<c { variance[ch] /= Double(n) }
        var total = 0.0, labelled = 0
        for s in batch {
            let (h, w) = (s.features.shape[1], s.features.shape[2])
            var z = [Double](repeating: 0, count: k * h * w)
            for o in 0..<k {
                for j in 0..<(h * w) {
                    var v = Double(head.classifierBias[o])
                    for ch in 0..<c {
                        let xhat = (Double(s.features.scalars[ch * h * w + j]) - mean[ch]) / (variance[ch] + Double(head.epsilon)).squareRoot()
                        v += Double(head.classifierWeight[o * c + ch]) * (xhat * Double(head.batchNormWeight[ch]) + Double(head.batchNormBias[ch]))
                    }
                    z[o * h * w + j] = v
                }
            }
            func tap(_ o: Int, _ input: Int, _ output: Int) -> (Int, Int, Double) {
                let src = max((Double(o) + 0.5) * Double(input) / Double(output) - 0.5, 0)
                let i0 = min(Int(src), input - 1)
                return (i0, min(i0 + 1, input - 1), src - Double(i0))
            }
            for oy in 0..<s.labels.height {
                for ox in 0..<s.labels.width {
                    let label = s.labels.labels[oy * s.labels.width + ox]
                    if label == 255 { continue }
                    let (y0, y1, ly) = tap(oy, h, s.labels.height), (x0, x1, lx) = tap(ox, w, s.labels.width)
                    let logits = (0..<k).map { o -> Double in
                        let base = o * h * w
                        let top = z[base + y0 * w + x0] * (1 - lx) + z[base + y0 * w + x1] * lx
                        let bottom = z[base + y1 * w + x0] * (1 - lx) + z[base + y1 * w + x1] * lx
                        return top * (1 - ly) + bottom * ly
                    }
                    let m = logits.max() ?? 0
                    total += log(logits.reduce(0) { $0 + exp($1 - m) }) + m - logits[Int(label)]
                    labelled += 1
                }
            }
        }
        return total / Double(labelled)
    }

    @Test("gradients match central finite differences of a double-precision loss", arguments: names)
    func finiteDifferences(_ name: String) throws {
        let c = try load(name)
        let (loss, gradients, _) = try ProbeLoss.evaluate(c.head, batch: c.batch)
        #expect(abs(loss - referenceLoss(c.head, c.batch)) <= 1e-5)
        let step: Float = 1e-2
        var worst: Double = 0
        func check(_ keyPath: WritableKeyPath<SegmentationHead, [Float]>, _ analytic: [Float], _ label: String) {
            for i in analytic.indices {
                var plus = c.head, minus = c.head
                plus[keyPath: keyPath][i] += step
                minus[keyPath: keyPath][i] -= step
                let actualStep = Double(plus[keyPath: keyPath][i]) - Double(minus[keyPath: keyPath][i])
                let numeric = (referenceLoss(plus, c.batch) - referenceLoss(minus, c.batch)) / actualStep
                let error = abs(Double(analytic[i]) - numeric)
                worst = max(worst, error)
                #expect(error <= 2e-5, "\(label)[\(i)]: analytic \(analytic[i]), numeric \(numeric)")
            }
        }
        check(\.classifierWeight, gradients.classifierWeight, "conv_seg.weight")
        check(\.classifierBias, gradients.classifierBias, "conv_seg.bias")
        check(\.batchNormWeight, gradients.batchNormWeight, "bn.weight")
        check(\.batchNormBias, gradients.batchNormBias, "bn.bias")
        print("finite differences \(name): worst |analytic - numeric| = \(worst)")
    }

    @Test("the pixel-by-pixel upsampled loss sees the same logits as resizeBilinear")
    func fusedUpsamplingAgreesWithResize() throws {
        var random = SeededRandom(seed: 7)
        let (k, h, w) = (3, 3, 5)
        let z = (0..<(k * h * w)).map { _ in Float(random.normal()) }
        let labels = LabelMap(width: 17, height: 11, labels: (0..<(17 * 11)).map { _ in UInt8(random.index(below: k)) })
        let (sum, _) = ProbeLoss.upsampledCrossEntropy(z, classes: k, height: h, width: w, labels: labels, scale: 1)
        let up = resizeBilinear(Tensor(shape: [1, k, h, w], scalars: z), height: 11, width: 17, alignCorners: false)
        var expected = 0.0
        for j in 0..<(11 * 17) {
            let logits = (0..<k).map { Double(up.scalars[$0 * 11 * 17 + j]) }
            let m = logits.max() ?? 0
            expected += log(logits.reduce(0) { $0 + exp($1 - m) }) + m - logits[Int(labels.labels[j])]
        }
        #expect(abs(sum - expected) <= 1e-4 * expected)
    }

    @Test("mmcv's poly and cosine schedules with linear warm-up")
    func schedules() {
        let poly = LearningRateSchedule(baseRate: 1e-3, decay: .poly(power: 1), warmupIterations: 10, warmupRatio: 1e-6)
        #expect(abs(poly.rate(at: 0, of: 100) - 1e-3 * 1e-6) < 1e-15)
        #expect(abs(poly.rate(at: 5, of: 100) - 1e-3 * 0.95 * (1 - 0.5 * (1 - 1e-6))) < 1e-12)
        #expect(abs(poly.rate(at: 10, of: 100) - 0.9e-3) < 1e-12)
        #expect(abs(poly.rate(at: 99, of: 100) - 1e-5) < 1e-12)
        let cosine = LearningRateSchedule(baseRate: 1, minimumRate: 0.1, decay: .cosine)
        #expect(abs(cosine.rate(at: 50, of: 100) - 0.55) < 1e-12)
        #expect(abs(cosine.rate(at: 0, of: 100) - 1) < 1e-12)
        let squared = LearningRateSchedule(baseRate: 1, decay: .poly(power: 2))
        #expect(abs(squared.rate(at: 25, of: 100) - 0.5625) < 1e-12)
    }

    @Test("one seed gives one head; another seed another")
    func determinism() throws {
        let c = try load("mixed_size")
        let samples = c.batch + c.batch.reversed()
        let configuration = c.head.configuration
        func run(_ seed: UInt64, threads: Int) throws -> SegmentationHead {
            let start = try SegmentationHead(configuration: configuration, channels: c.head.channels, seed: seed)
            let options = ProbeTrainingOptions(epochs: 3, batchSize: 3, seed: seed, threads: threads)
            return try ProbeTrainer.train(start, on: samples, options: options).head
        }
        let a = try run(1, threads: 1), b = try run(1, threads: 2), d = try run(2, threads: 1)
        #expect(a.classifierWeight == b.classifierWeight && a.batchNormBias == b.batchNormBias && a.runningVariance == b.runningVariance)
        #expect(a.classifierWeight != d.classifierWeight)
    }

    @Test("mmseg's initialisation: N(0, 0.01) weights, zero bias, identity BatchNorm")
    func initialisation() throws {
        let head = try SegmentationHead(configuration: SegmentationHeadConfiguration(layers: .last(1), classNames: DatasetClasses.numbered(10)),
                                        channels: 200, seed: 3)
        let mean = head.classifierWeight.reduce(0, +) / Float(head.classifierWeight.count)
        let std = (head.classifierWeight.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(head.classifierWeight.count)).squareRoot()
        #expect(abs(std - 0.01) < 0.001 && abs(mean) < 0.001)
        #expect(head.classifierBias.allSatisfy { $0 == 0 } && head.batchNormWeight.allSatisfy { $0 == 1 } && head.runningVariance.allSatisfy { $0 == 1 })
    }

    @Test("settings that cannot train are refused")
    func invalidSettings() throws {
        #expect(throws: SegmentationError.self) { try ProbeTrainingOptions(epochs: 0).validate() }
        #expect(throws: SegmentationError.self) { try ProbeTrainingOptions(schedule: LearningRateSchedule(baseRate: -1)).validate() }
        let c = try load("same_size")
        var bad = c.batch
        bad[0].labels.labels[0] = 9
        #expect(throws: SegmentationError.self) { try ProbeLoss.evaluate(c.head, batch: bad) }
        let single = [TrainingSample(features: Tensor(shape: [c.head.channels, 1, 1], repeating: 1), labels: LabelMap(width: 2, height: 2, filling: 0))]
        #expect(throws: SegmentationError.self) { try ProbeLoss.evaluate(c.head, batch: single) }
    }
}
