import ArgumentParser
import DinoImage
import DinoModel
import DinoTensor
import Foundation

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

    /// Files that failed, with why.
    private(set) var failures: [(path: String, reason: String)] = []
    /// Files that completed.
    private(set) var succeeded = 0

    init(files: [URL], missing: [String], preprocessing: Preprocessing, patchSize: Int, batchSize: Int, label: String) {
        self.files = files
        self.preprocessing = preprocessing
        self.patchSize = patchSize
        self.batchSize = batchSize
        self.label = label
        for path in missing { fail(path, "no such file, or no images match") }
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

        for url in files {
            let stem = uniqueStem(url, &stems)
            do {
                let image = try ImageIO.read(url)
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
        printError(String(format: "%@: %d of %d images done, %d failed, %.2f s (%.2f images/s); preprocessing: %@",
                          label, succeeded, succeeded + failures.count, failures.count, seconds, rate, preprocessing.summary))
    }

    /// Exits non-zero when any input failed.
    func finish() throws {
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
