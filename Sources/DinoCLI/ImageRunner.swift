import ArgumentParser
import DinoImage
import DinoModel
import DinoPipeline
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

/// Where a command's per-image files go and how they end: an image whose files all exist is done
/// (`--resume`).
struct OutputPlan {
    /// The output folder.
    var folder: URL
    /// Endings of the files written per image, e.g. `.pca.png`.
    var suffixes: [String]

    /// Whether every file of the image with base name `stem` exists.
    func isComplete(_ stem: String) -> Bool {
        !suffixes.isEmpty && suffixes.allSatisfy { FileManager.default.fileExists(atPath: folder.appendingPathComponent(stem + $0).path) }
    }
}

/// The one way every image command runs: expands the inputs, reads each image within
/// `--max-pixels`, prepares it, batches images of one prepared size, reports failures per image
/// and keeps going, skips finished images with `--resume`, stops cleanly on SIGINT / SIGTERM,
/// and ends with a summary and the exit code.
struct ImageRunner {
    let files: [URL]
    let preparation: any ImagePreparing
    let patchSize: Int
    let batchSize: Int
    let label: String
    let maxPixels: Int
    /// Per-image files, for `--resume`; nil for commands that write none.
    let outputs: OutputPlan?
    /// With `--resume`: images already done by an earlier run (their `--json` records exist, or
    /// their files).
    let resume: Bool
    /// With `--resume`, image paths an earlier run's `--json` summary already holds.
    var reported: Set<String> = []

    /// Files that failed, with why.
    private(set) var failures: [(path: String, reason: String)] = []
    /// Files that completed.
    private(set) var succeeded = 0
    /// Files skipped because an earlier run finished them (`--resume`).
    private(set) var skipped = 0
    /// Files not started because the run was interrupted.
    private(set) var notStarted = 0

    /// A runner over the files `inputs` names.
    init(inputs: ImageInputOptions, preparation: any ImagePreparing, patchSize: Int, label: String, outputs: OutputPlan?) {
        let (files, missing) = inputs.expand()
        self.files = files
        self.preparation = preparation
        self.patchSize = patchSize
        self.batchSize = inputs.batchSize
        self.label = label
        self.maxPixels = inputs.maxPixels
        self.outputs = outputs
        self.resume = inputs.resume
        for path in missing { fail(path, "no such file, or no images match") }
    }

    /// A runner over a dataset's files, which writes no per-image files and does not resume.
    init(files: [URL], preparation: any ImagePreparing, patchSize: Int, batchSize: Int, label: String,
         maxPixels: Int = ImageIO.defaultMaxPixels) {
        self.files = files
        self.preparation = preparation
        self.patchSize = patchSize
        self.batchSize = batchSize
        self.label = label
        self.maxPixels = maxPixels
        outputs = nil
        resume = false
    }

    /// Whether an earlier run finished the image at `url` with base name `stem`.
    private func isDone(_ url: URL, stem: String) -> Bool {
        guard resume else { return false }
        let filesDone = outputs.map { $0.isComplete(stem) }
        let reportDone = reported.isEmpty ? nil : reported.contains(url.path)
        switch (filesDone, reportDone) {
        case (nil, nil): return false
        case let (files?, nil): return files
        case let (nil, report?): return report
        case let (files?, report?): return files && report
        }
    }

    /// Calls `process` with batches of prepared images; an error thrown by `process` fails every
    /// image of that batch, and `process` reports images it could only partly handle by
    /// returning their failures.
    mutating func run(_ process: (_ batch: [ImageItem]) throws -> [(ImageItem, String)]) {
        let progress = ProgressBar(label: label, total: files.count)
        defer { progress.finish() }
        var stems = Set<String>()
        var pending: [ImageItem] = []
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
            do {
                let failed = try process(batch)
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
            if isDone(url, stem: stem) {
                skipped += 1
                progress.advance(note: url.lastPathComponent)
                continue
            }
            do {
                let image = try ImageIO.read(url, maxPixels: maxPixels)
                let prepared = try preparation.prepare(image, patchSize: patchSize)
                let item = ImageItem(url: url, image: image, prepared: prepared, outputStem: stem)
                if let first = pending.first, first.prepared.pixels.shape != prepared.pixels.shape || pending.count >= batchSize {
                    flush()
                }
                pending.append(item)
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
                          label, succeeded, total, failures.count, seconds, rate, preparation.summary)
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

/// `--json`: a run's per-image records as one JSON array, written atomically at the end. With
/// `--resume` the records of an earlier run are kept, their images count as done, and a run that
/// adds nothing leaves the file as it is.
struct ReportOptions: ParsableArguments {
    @Option(name: .long, help: "Also write the per-image results as a JSON array to this file.")
    var json: String?

    /// The records of an earlier run when resuming (nothing when not resuming or no file exists).
    func earlierRecords(resume: Bool) throws -> [JSONValue] {
        guard resume, let json, FileManager.default.fileExists(atPath: json) else { return [] }
        guard let records = try JSONValue.parse(InputFile.contents(of: URL(fileURLWithPath: json))).arrayValue else {
            throw ValidationError("--json \(json): an earlier run's file must hold a JSON array to resume")
        }
        return records
    }

    /// Writes the earlier and new records; a run that adds none writes nothing.
    func write(earlier: [JSONValue], new: [JSONValue]) throws {
        guard let json, !new.isEmpty else { return }
        let text = JSONValue.array(earlier + new).serialized + "\n"
        try AtomicFile.write(to: URL(fileURLWithPath: json)) { try $0.write(contentsOf: Data(text.utf8)) }
    }
}

extension ImageRunner {
    /// Runs image heads on every batch (one backbone pass per batch and backbone), prints each
    /// image's lines, and writes `--json` with one record per image: the head's own record, or
    /// with several heads `{"image", "<head>": record, ...}`.
    mutating func run(_ pipeline: HeadPipeline, names: [String], report: ReportOptions) throws {
        let earlier = try report.earlierRecords(resume: resume)
        reported = Set(earlier.compactMap { $0["image"]?.stringValue })
        var records: [JSONValue] = []
        run { batch in
            let results = pipeline.run(batch)
            var failed: [(ImageItem, String)] = []
            for (index, item) in batch.enumerated() {
                var members: [(key: String, value: JSONValue)] = [("image", .string(item.url.path))]
                var reasons: [String] = []
                for (head, result) in zip(names, results) {
                    switch result[index] {
                    case .success(let imageReport):
                        if let line = imageReport.line { print(line) }
                        if let record = imageReport.record { members.append((head, record)) }
                    case .failure(let error):
                        reasons.append(names.count > 1 ? "\(head): \(error)" : "\(error)")
                    }
                }
                if reasons.isEmpty {
                    if names.count == 1, let only = members.last, members.count == 2 {
                        records.append(only.value)
                    } else if members.count > 1 {
                        records.append(.object(members))
                    }
                } else {
                    failed.append((item, reasons.joined(separator: "; ")))
                }
            }
            return failed
        }
        try report.write(earlier: earlier, new: records)
    }
}
