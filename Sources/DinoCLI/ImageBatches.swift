import ArgumentParser
import DinoImage
import DinoModel
import DinoTensor
import Foundation
import Synchronization

/// SIGINT / SIGTERM during a run: the first one asks the run to stop after the image in
/// progress (outputs are written atomically, so only complete files remain); a second one
/// terminates at once.
enum Interruption {
    private static let requested = Atomic<Int32>(0)

    /// The signal received, or nil.
    static var signal: Int32? {
        let value = requested.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Installs the handlers (idempotent).
    static func install() {
        _ = requested.load(ordering: .relaxed)  // initialise the static before any handler runs
        // A parent may start us with these signals blocked (Foundation's Process does); unblock
        // them so the handlers can run.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for number in [SIGINT, SIGTERM] {
            Glibc.signal(number) { received in
                Interruption.requested.store(received, ordering: .relaxed)
                // A second signal gets the default action.
                Glibc.signal(received, SIG_DFL)
            }
        }
    }
}

/// One input image, read and prepared for the model.
struct LoadedImage {
    /// The file.
    var url: URL
    /// The decoded image.
    var image: RGBImage
    /// Pixels and geometry for the model.
    var prepared: PreparedImage
    /// Base name for this image's output files, unique within the run.
    var outputStem: String
}

/// Runs a command over many images: reads and prepares each, batches images of one prepared
/// size, reports failures per image and keeps going, and prints a summary at the end.
struct ImageBatches {
    let files: [URL]
    let preprocessing: Preprocessing
    let patchSize: Int
    let batchSize: Int
    let label: String
    let maxPixels: Int

    /// Files that failed, with why.
    private(set) var failures: [(path: String, reason: String)] = []
    /// Files that completed.
    private(set) var succeeded = 0
    /// Files skipped because their outputs already existed (`--resume`).
    private(set) var skipped = 0
    /// Files not started because the run was interrupted.
    private(set) var notStarted = 0
    /// With `--resume`: whether the outputs for an image's output stem already exist.
    var isComplete: ((_ stem: String) -> Bool)?

    init(files: [URL], missing: [String], preprocessing: Preprocessing, patchSize: Int, batchSize: Int, label: String,
         maxPixels: Int = ImageIO.defaultMaxPixels) {
        self.maxPixels = maxPixels
        self.files = files
        self.preprocessing = preprocessing
        self.patchSize = patchSize
        self.batchSize = batchSize
        self.label = label
        for path in missing { fail(path, "no such file, or no images match") }
    }

    /// Batches over the files the input options name, with their batch size and pixel limit.
    init(inputs: ImageInputOptions, preprocessing: Preprocessing, patchSize: Int, label: String) {
        let (files, missing) = inputs.expand()
        self.init(files: files, missing: missing, preprocessing: preprocessing, patchSize: patchSize,
                  batchSize: inputs.batchSize, label: label, maxPixels: inputs.maxPixels)
    }

    /// Calls `process` with batches of prepared images and their stacked pixels `[B, 3, H, W]`.
    /// An error thrown by `process` fails every image of that batch; `process` reports images it
    /// could only partly handle by returning their failures.
    mutating func run(_ process: (_ batch: [LoadedImage], _ pixels: Tensor) throws -> [(LoadedImage, String)]) {
        let progress = ProgressBar(label: label, total: files.count)
        defer { progress.finish() }
        var stems = Set<String>()
        var pending: [LoadedImage] = []
        let started = DispatchTime.now().uptimeNanoseconds

        func flush() {
            guard !pending.isEmpty else { return }
            if Interruption.signal != nil {
                notStarted += pending.count
                pending = []
                return
            }
            let batch = pending
            pending = []
            let pixels = Tensor.stack(batch.map(\.prepared.pixels))
            do {
                let failed = try process(batch, pixels)
                for (image, reason) in failed { fail(image.url.path, reason) }
                succeeded += batch.count - failed.count
            } catch {
                for image in batch { fail(image.url.path, "\(error)") }
            }
            progress.advance(batch.count, note: batch.last?.url.lastPathComponent ?? "")
        }

        Interruption.install()
        for (position, url) in files.enumerated() {
            let stem = uniqueStem(url, &stems)
            if Interruption.signal != nil {
                notStarted += files.count - position
                break
            }
            if let isComplete, isComplete(stem) {
                skipped += 1
                progress.advance(note: url.lastPathComponent)
                continue
            }
            do {
                let image = try ImageIO.read(url, maxPixels: maxPixels)
                let prepared = try preprocessing.prepare(image, patchSize: patchSize)
                let loaded = LoadedImage(url: url, image: image, prepared: prepared, outputStem: stem)
                if let first = pending.first, first.prepared.pixels.shape != prepared.pixels.shape || pending.count >= batchSize {
                    flush()
                }
                pending.append(loaded)
            } catch {
                fail(url.path, "\(error)")
                progress.advance(note: url.lastPathComponent)
            }
        }
        flush()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        progress.finish()
        summary(seconds: seconds)
    }

    private mutating func fail(_ path: String, _ reason: String) {
        // An error's text usually names the file already.
        printError("error: " + (reason.hasPrefix(path) ? reason : "\(path): \(reason)"))
        failures.append((path, reason))
    }

    private func uniqueStem(_ url: URL, _ used: inout Set<String>) -> String {
        let base = url.deletingPathExtension().lastPathComponent
        var stem = base
        var counter = 2
        while !used.insert(stem).inserted {
            stem = "\(base)_\(counter)"
            counter += 1
        }
        return stem
    }

    private func summary(seconds: Double) {
        let rate = seconds > 0 ? Double(succeeded) / seconds : 0
        let total = succeeded + failures.count + skipped + notStarted
        var text = String(format: "%@: %d of %d images done, %d failed, %.2f s (%.2f images/s); preprocessing: %@",
                          label, succeeded, total, failures.count, seconds, rate, preprocessing.summary)
        if skipped > 0 { text += "; \(skipped) already done (--resume)" }
        if let signal = Interruption.signal {
            text += "; interrupted by signal \(signal): \(notStarted) not started, rerun with --resume to continue"
        }
        printError(text)
    }

    /// Exits non-zero when any input failed (1) or the run was interrupted (128 + signal).
    func finish() throws {
        if let signal = Interruption.signal { throw ExitCode(128 + signal) }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
