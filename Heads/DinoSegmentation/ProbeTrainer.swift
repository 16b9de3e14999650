import Foundation

/// The optimiser of a probe.
public enum ProbeOptimizer: Sendable, Equatable {
    /// AdamW with decoupled weight decay (`torch.optim.AdamW`).
    case adamW(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8)
    /// SGD with momentum, weight decay added to the gradient (`torch.optim.SGD`).
    case sgd(momentum: Float = 0.9)
}

/// How the learning rate shrinks after the warm-up.
public enum LearningRateDecay: Sendable, Equatable {
    /// No decay.
    case constant
    /// `(base - min) * (1 - t / T)^power + min` (mmcv's "poly").
    case poly(power: Double)
    /// `min + (base - min) * (1 + cos(pi * t / T)) / 2` (mmcv's "CosineAnnealing").
    case cosine
}

/// A learning-rate schedule over iterations, with an optional linear warm-up.
///
/// ref: mmcv `LrUpdaterHook` (`PolyLrUpdaterHook`, `CosineAnnealingLrUpdaterHook`, linear
/// warm-up): during the first `warmupIterations` iterations the decayed rate is multiplied by
/// `1 - (1 - t / warmup) * (1 - warmupRatio)`. The released dinov2 linear heads used AdamW
/// (lr 1e-3, weight decay 1e-4), poly with power 1, 1500 warm-up iterations at ratio 1e-6,
/// 40k iterations.
public struct LearningRateSchedule: Sendable, Equatable {
    /// The rate at iteration 0 after warm-up.
    public var baseRate: Double
    /// The rate the decay ends at.
    public var minimumRate: Double
    /// The decay.
    public var decay: LearningRateDecay
    /// Iterations of linear warm-up.
    public var warmupIterations: Int
    /// The fraction of the rate the warm-up starts from.
    public var warmupRatio: Double

    /// A schedule from its parts.
    public init(baseRate: Double, minimumRate: Double = 0, decay: LearningRateDecay = .poly(power: 1),
                warmupIterations: Int = 0, warmupRatio: Double = 1e-6) {
        self.baseRate = baseRate
        self.minimumRate = minimumRate
        self.decay = decay
        self.warmupIterations = warmupIterations
        self.warmupRatio = warmupRatio
    }

    /// The rate for 0-based iteration `t` of `total`.
    public func rate(at t: Int, of total: Int) -> Double {
        let progress = total > 0 ? min(Double(t) / Double(total), 1) : 0
        var rate: Double
        switch decay {
        case .constant: rate = baseRate
        case .poly(let power): rate = (baseRate - minimumRate) * pow(1 - progress, power) + minimumRate
        case .cosine: rate = minimumRate + 0.5 * (baseRate - minimumRate) * (1 + cos(Double.pi * progress))
        }
        if t < warmupIterations {
            let k = (1 - Double(t) / Double(warmupIterations)) * (1 - warmupRatio)
            rate *= 1 - k
        }
        return rate
    }
}

/// Settings of a probe training run.
public struct ProbeTrainingOptions: Sendable, Equatable {
    /// Passes over the training set.
    public var epochs: Int
    /// Images per iteration.
    public var batchSize: Int
    /// The optimiser.
    public var optimizer: ProbeOptimizer
    /// Weight decay, applied to every trainable parameter (the released configs set no
    /// per-parameter exceptions).
    public var weightDecay: Float
    /// The learning-rate schedule.
    public var schedule: LearningRateSchedule
    /// Seed of the head initialisation and the shuffling.
    public var seed: UInt64
    /// BatchNorm running-statistics momentum (PyTorch's 0.1).
    public var batchNormMomentum: Float
    /// Images whose gradients are computed in parallel.
    public var threads: Int

    /// Options; the defaults are the released dinov2 heads' optimiser (AdamW, lr 1e-3, weight
    /// decay 1e-4, poly decay) with a warm-up of one epoch.
    public init(epochs: Int = 20, batchSize: Int = 8, optimizer: ProbeOptimizer = .adamW(), weightDecay: Float = 1e-4,
                schedule: LearningRateSchedule = LearningRateSchedule(baseRate: 1e-3), seed: UInt64 = 0,
                batchNormMomentum: Float = 0.1, threads: Int = 1) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.weightDecay = weightDecay
        self.schedule = schedule
        self.seed = seed
        self.batchNormMomentum = batchNormMomentum
        self.threads = threads
    }

    /// Checks the settings.
    public func validate() throws(SegmentationError) {
        guard epochs >= 1 else { throw .invalidSetting(name: "epochs", reason: "must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw .invalidSetting(name: "batch size", reason: "must be at least 1, got \(batchSize)") }
        guard schedule.baseRate > 0, schedule.baseRate.isFinite else {
            throw .invalidSetting(name: "learning rate", reason: "must be positive, got \(schedule.baseRate)")
        }
        guard schedule.minimumRate >= 0, schedule.minimumRate <= schedule.baseRate else {
            throw .invalidSetting(name: "minimum learning rate", reason: "must be in [0, \(schedule.baseRate)], got \(schedule.minimumRate)")
        }
        guard schedule.warmupIterations >= 0, (0...1).contains(schedule.warmupRatio) else {
            throw .invalidSetting(name: "warm-up", reason: "iterations must be >= 0 and the ratio in [0, 1]")
        }
        guard weightDecay >= 0 else { throw .invalidSetting(name: "weight decay", reason: "must be >= 0, got \(weightDecay)") }
        guard (0...1).contains(batchNormMomentum) else {
            throw .invalidSetting(name: "BatchNorm momentum", reason: "must be in [0, 1], got \(batchNormMomentum)")
        }
        switch optimizer {
        case let .adamW(beta1, beta2, epsilon):
            guard (0..<1).contains(beta1), (0..<1).contains(beta2), epsilon > 0 else {
                throw .invalidSetting(name: "AdamW", reason: "betas must be in [0, 1) and epsilon positive")
            }
        case let .sgd(momentum):
            guard momentum >= 0 else { throw .invalidSetting(name: "SGD momentum", reason: "must be >= 0, got \(momentum)") }
        }
    }
}

/// Trains a head's BatchNorm and classifier on fixed features, one batch per `step`.
public struct ProbeTrainer: Sendable {
    /// The head being trained.
    public private(set) var head: SegmentationHead
    /// The settings.
    public let options: ProbeTrainingOptions
    /// Iterations the schedule spans.
    public let totalIterations: Int
    /// Iterations done.
    public private(set) var iteration = 0
    private var firstMoment: [[Float]]
    private var secondMoment: [[Float]]

    /// A trainer for `head` over `totalIterations` iterations.
    public init(head: SegmentationHead, options: ProbeTrainingOptions, totalIterations: Int) throws(SegmentationError) {
        try options.validate()
        self.head = head
        self.options = options
        self.totalIterations = totalIterations
        let sizes = [head.classifierWeight.count, head.classifierBias.count, head.batchNormWeight.count, head.batchNormBias.count]
        firstMoment = sizes.map { [Float](repeating: 0, count: $0) }
        secondMoment = firstMoment
    }

    /// The learning rate of the next step.
    public var learningRate: Double { options.schedule.rate(at: iteration, of: totalIterations) }

    /// One iteration: the loss and gradients of `batch` (BatchNorm in training mode), the
    /// running statistics updated, then one optimiser step. Returns the loss.
    ///
    /// ref: `torch.nn.BatchNorm2d` in training mode: `running = (1 - momentum) * running +
    /// momentum * batch`, with the unbiased variance `var * N / (N - 1)` for `running_var`.
    @discardableResult
    public mutating func step(_ batch: [TrainingSample]) throws(SegmentationError) -> Double {
        let rate = Float(learningRate)
        let (loss, gradients, statistics) = try ProbeLoss.evaluate(head, batch: batch, threads: options.threads)
        let m = options.batchNormMomentum
        let unbias = Float(Double(statistics.count) / Double(statistics.count - 1))
        for ch in 0..<head.channels {
            head.runningMean[ch] = (1 - m) * head.runningMean[ch] + m * statistics.mean[ch]
            head.runningVariance[ch] = (1 - m) * head.runningVariance[ch] + m * statistics.variance[ch] * unbias
        }
        head.batchesTracked += 1
        iteration += 1
        let (optimizer, decay, t) = (options.optimizer, options.weightDecay, iteration)
        Self.update(&head.classifierWeight, gradients.classifierWeight, &firstMoment[0], &secondMoment[0], optimizer, decay, t, rate)
        Self.update(&head.classifierBias, gradients.classifierBias, &firstMoment[1], &secondMoment[1], optimizer, decay, t, rate)
        Self.update(&head.batchNormWeight, gradients.batchNormWeight, &firstMoment[2], &secondMoment[2], optimizer, decay, t, rate)
        Self.update(&head.batchNormBias, gradients.batchNormBias, &firstMoment[3], &secondMoment[3], optimizer, decay, t, rate)
        return loss
    }

    /// One optimiser step on a parameter vector; `iteration` already counts this step.
    ///
    /// ref: `torch.optim.AdamW` (single-tensor form: decay `p *= 1 - lr * wd`, `m.lerp_(g,
    /// 1 - beta1)`, `v = beta2 v + (1 - beta2) g²`, `p -= lr / (1 - beta1^t) * m /
    /// (sqrt(v) / sqrt(1 - beta2^t) + eps)`) and `torch.optim.SGD` (`g += wd p`; the first step
    /// sets the momentum buffer to `g`, later ones `buf = momentum buf + g`; `p -= lr buf`).
    private static func update(_ parameter: inout [Float], _ gradient: [Float], _ first: inout [Float], _ second: inout [Float],
                               _ optimizer: ProbeOptimizer, _ decay: Float, _ iteration: Int, _ rate: Float) {
        switch optimizer {
        case let .adamW(beta1, beta2, epsilon):
            // Scalars in double precision, as PyTorch computes them in Python.
            let t = Double(iteration)
            let correction2Root = Float((1 - pow(Double(beta2), t)).squareRoot())
            let stepSize = Float(Double(rate) / (1 - pow(Double(beta1), t)))
            let shrink = Float(1 - Double(rate) * Double(decay))
            for i in parameter.indices {
                parameter[i] *= shrink
                let g = gradient[i]
                first[i] += (g - first[i]) * (1 - beta1)
                second[i] = second[i] * beta2 + (1 - beta2) * g * g
                let denominator = second[i].squareRoot() / correction2Root + epsilon
                parameter[i] -= stepSize * first[i] / denominator
            }
        case let .sgd(momentum):
            for i in parameter.indices {
                let g = gradient[i] + decay * parameter[i]
                var direction = g
                if momentum != 0 {
                    first[i] = iteration == 1 ? g : momentum * first[i] + g
                    direction = first[i]
                }
                parameter[i] -= rate * direction
            }
        }
    }
}

/// Anything that hands out training samples by index (the feature cache, or samples in memory).
public protocol TrainingSampleSource {
    /// Number of samples.
    var count: Int { get }
    /// Sample `index`.
    func sample(_ index: Int) throws(SegmentationError) -> TrainingSample
}

extension Array: TrainingSampleSource where Element == TrainingSample {
    /// Element `index`.
    public func sample(_ index: Int) throws(SegmentationError) -> TrainingSample { self[index] }
}

/// Where a training run is, reported after each iteration.
public struct TrainingProgress: Sendable {
    /// 0-based epoch.
    public var epoch: Int
    /// Iterations done in this epoch.
    public var iterationInEpoch: Int
    /// Iterations per epoch.
    public var iterationsPerEpoch: Int
    /// The last batch's loss.
    public var loss: Double
    /// The mean loss of this epoch so far.
    public var epochLoss: Double
    /// The learning rate the last step used.
    public var learningRate: Double
}

extension ProbeTrainer {
    /// Trains `head` for `options.epochs` epochs over `samples`, shuffled each epoch by a
    /// generator seeded with `options.seed` (so one seed gives one head), in batches of
    /// `options.batchSize` (the last batch of an epoch may be smaller).
    ///
    /// - Returns: the trained head and the mean loss of each epoch.
    public static func train(_ head: SegmentationHead, on samples: some TrainingSampleSource, options: ProbeTrainingOptions,
                             progress: (TrainingProgress) -> Void = { _ in }) throws(SegmentationError) -> (head: SegmentationHead, epochLosses: [Double]) {
        guard samples.count > 0 else { throw .invalidSetting(name: "training set", reason: "has no samples") }
        let perEpoch = (samples.count + options.batchSize - 1) / options.batchSize
        var trainer = try ProbeTrainer(head: head, options: options, totalIterations: perEpoch * options.epochs)
        var random = SeededRandom(seed: options.seed ^ 0x5EED_0F_5A4D)
        var epochLosses: [Double] = []
        for epoch in 0..<options.epochs {
            let order = random.shuffled(Array(0..<samples.count))
            var sum = 0.0
            for (i, start) in stride(from: 0, to: order.count, by: options.batchSize).enumerated() {
                var batch: [TrainingSample] = []
                for index in order[start..<min(start + options.batchSize, order.count)] { batch.append(try samples.sample(index)) }
                let rate = trainer.learningRate
                let loss = try trainer.step(batch)
                sum += loss
                progress(TrainingProgress(epoch: epoch, iterationInEpoch: i + 1, iterationsPerEpoch: perEpoch, loss: loss,
                                          epochLoss: sum / Double(i + 1), learningRate: rate))
            }
            epochLosses.append(sum / Double(perEpoch))
        }
        return (trainer.head, epochLosses)
    }
}
