import DinoImage
import DinoTensor
import Foundation

/// How samples become pixels.
public struct PreparationOptions: Sendable {
    /// The preprocessing preset.
    public var preprocessing: Preprocessing
    /// The model's patch size.
    public var patchSize: Int
    /// Largest image accepted, in pixels (checked from the header before decoding).
    public var maxPixels: Int
    /// Largest tar member read into memory.
    public var maxMemberBytes: Int

    /// Options from their parts.
    public init(preprocessing: Preprocessing, patchSize: Int, maxPixels: Int = ImageIO.defaultMaxPixels,
                maxMemberBytes: Int = 256 << 20) {
        self.preprocessing = preprocessing
        self.patchSize = patchSize
        self.maxPixels = maxPixels
        self.maxMemberBytes = maxMemberBytes
    }
}

/// What the pipeline hands to inference, in input order.
public enum PipelineItem: Sendable {
    /// A prepared image: normalised pixels `[3, H, W]`.
    case image(unit: Int, position: Int, key: String, pixels: Tensor)
    /// A sample that could not be read, decoded or prepared.
    case failure(unit: Int, position: Int, key: String, reason: String)
    /// The end of a unit: `count` samples were produced, or reading it failed with `error`.
    case unitEnd(unit: Int, count: Int, error: DatasetError?)
}

/// A sample as the reader produces it, before decoding.
enum RawItem: Sendable {
    case bytes(unit: Int, position: Int, key: String, data: Data, name: String)
    case file(unit: Int, position: Int, key: String, path: String)
    case failure(unit: Int, position: Int, key: String, reason: String)
    case unitEnd(unit: Int, count: Int, error: DatasetError?)

    /// Decodes and prepares the image (the expensive part, done on the decode threads).
    func prepared(_ options: PreparationOptions) -> PipelineItem {
        switch self {
        case let .bytes(unit, position, key, data, name):
            return Self.prepare(unit, position, key, options) { () throws(ImageError) in
                try ImageIO.decode(data, name: name, maxPixels: options.maxPixels)
            }
        case let .file(unit, position, key, path):
            return Self.prepare(unit, position, key, options) { () throws(ImageError) in
                try ImageIO.read(URL(fileURLWithPath: path), maxPixels: options.maxPixels)
            }
        case let .failure(unit, position, key, reason):
            return .failure(unit: unit, position: position, key: key, reason: reason)
        case let .unitEnd(unit, count, error):
            return .unitEnd(unit: unit, count: count, error: error)
        }
    }

    private static func prepare(_ unit: Int, _ position: Int, _ key: String, _ options: PreparationOptions,
                                _ decode: () throws(ImageError) -> RGBImage) -> PipelineItem {
        do {
            let image = try decode()
            let prepared = try options.preprocessing.prepare(image, patchSize: options.patchSize)
            return .image(unit: unit, position: position, key: key, pixels: prepared.pixels)
        } catch {
            return .failure(unit: unit, position: position, key: key, reason: "\(error)")
        }
    }
}

/// Reads the samples of a list of units in order: tar members (only the image member of each
/// sample is read into memory) or file paths, and an end marker after each unit.
struct SampleReader {
    private let units: [DatasetUnit]
    private let options: PreparationOptions
    private var unitPosition = 0
    private var samplePosition = 0
    private var tar: TarSampleReader?
    private var started = false

    init(units: [DatasetUnit], options: PreparationOptions) {
        self.units = units
        self.options = options
    }

    /// The next item, or nil after the last unit's end marker.
    mutating func next() -> RawItem? {
        while unitPosition < units.count {
            let unit = units[unitPosition]
            switch unit.source {
            case .files(let items):
                guard samplePosition < items.count else { return endUnit(error: nil) }
                let item = items[samplePosition]
                samplePosition += 1
                return .file(unit: unitPosition, position: samplePosition - 1, key: item.key, path: item.path)
            case .tar(let path):
                do {
                    if !started {
                        started = true
                        tar = try TarSampleReader(url: URL(fileURLWithPath: path))
                    }
                    // Advanced in place: a copy would duplicate the reader's table of seen keys.
                    guard let sample = try tar?.next(), let archive = tar?.reader else { return endUnit(error: nil) }
                    let position = samplePosition
                    samplePosition += 1
                    guard let member = sample.imageMember else {
                        let found = sample.members.map(\.extension).joined(separator: ", ")
                        return .failure(unit: unitPosition, position: position, key: sample.key,
                                        reason: "\(path): sample \(sample.key) has no image member (found: \(found))")
                    }
                    do {
                        let data = try archive.data(of: member, limit: options.maxMemberBytes)
                        return .bytes(unit: unitPosition, position: position, key: sample.key, data: data, name: "\(path):\(member.name)")
                    } catch {
                        return .failure(unit: unitPosition, position: position, key: sample.key, reason: "\(error)")
                    }
                } catch {
                    return endUnit(error: error)
                }
            }
        }
        return nil
    }

    private mutating func endUnit(error: DatasetError?) -> RawItem {
        let item = RawItem.unitEnd(unit: unitPosition, count: error == nil ? samplePosition : 0, error: error)
        unitPosition += 1
        samplePosition = 0
        tar = nil
        started = false
        return item
    }
}

/// Overlaps reading and decoding with inference: one reader thread reads samples in order,
/// `decodeThreads` threads decode and prepare them, and `next()` hands them out in the reader's
/// order. At most `window` items are between the reader and the consumer at any time, so memory
/// stays flat however long the run. With 0 decode threads, `next()` reads and decodes in line
/// (the sequential baseline).
public final class PreparationPipeline: @unchecked Sendable {
    // @unchecked: every mutable field below is guarded by `condition`, except `inline`, which
    // only the consumer's thread touches (and only without decode threads).
    private let condition = NSCondition()
    private var waiting: [(sequence: Int, item: RawItem)] = []
    private var waitingHead = 0
    private var ready: [Int: PipelineItem] = [:]
    private var produced = 0
    private var consumed = 0
    private var readerDone = false
    private var cancelled = false
    private let window: Int
    private let options: PreparationOptions
    private let threads = DispatchGroup()
    private var inline: SampleReader?
    private let shouldStop: @Sendable () -> Bool

    /// Starts reading `units`; the reader stops early once `shouldStop` returns true.
    public init(units: [DatasetUnit], options: PreparationOptions, decodeThreads: Int, window: Int,
                shouldStop: @escaping @Sendable () -> Bool) {
        self.window = max(1, window)
        self.options = options
        self.shouldStop = shouldStop
        guard decodeThreads > 0 else {
            inline = SampleReader(units: units, options: options)
            return
        }
        start(name: "dino-read") { [self] in readLoop(units) }
        for i in 0..<decodeThreads {
            start(name: "dino-decode-\(i)") { [self] in decodeLoop() }
        }
    }

    deinit { close() }

    private func start(name: String, _ body: @escaping @Sendable () -> Void) {
        threads.enter()
        let thread = Thread { [threads] in
            body()
            threads.leave()
        }
        thread.name = name
        // Image codecs can use deep stacks; the Foundation default on Linux is small.
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func readLoop(_ units: [DatasetUnit]) {
        var reader = SampleReader(units: units, options: options)
        while true {
            condition.lock()
            while produced - consumed >= window && !cancelled { condition.wait() }
            let stop = cancelled
            condition.unlock()
            if stop || shouldStop() { break }
            guard let item = reader.next() else { break }
            condition.lock()
            waiting.append((produced, item))
            produced += 1
            condition.broadcast()
            condition.unlock()
        }
        condition.lock()
        readerDone = true
        condition.broadcast()
        condition.unlock()
    }

    private func decodeLoop() {
        while true {
            condition.lock()
            while waitingHead == waiting.count && !readerDone && !cancelled { condition.wait() }
            guard !cancelled, waitingHead < waiting.count else {
                condition.unlock()
                return
            }
            let (sequence, raw) = waiting[waitingHead]
            waitingHead += 1
            // Drop the consumed prefix now and then so the queue does not grow.
            if waitingHead > 256 && waitingHead * 2 > waiting.count {
                waiting.removeFirst(waitingHead)
                waitingHead = 0
            }
            condition.unlock()
            let item = raw.prepared(options)
            condition.lock()
            ready[sequence] = item
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next item in input order, or nil when everything was read (or the run stops).
    public func next() -> PipelineItem? {
        if inline != nil {
            if shouldStop() { return nil }
            return inline?.next()?.prepared(options)
        }
        condition.lock()
        defer { condition.unlock() }
        while ready[consumed] == nil && !(readerDone && consumed >= produced) && !cancelled { condition.wait() }
        guard !cancelled, let item = ready.removeValue(forKey: consumed) else { return nil }
        consumed += 1
        condition.broadcast()
        return item
    }

    /// Stops the threads and waits for them to end.
    public func close() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
        threads.wait()
    }
}
