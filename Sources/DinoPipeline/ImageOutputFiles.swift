import Foundation

/// The files one image's outputs go to, `<folder>/<stem><suffix>`.
///
/// Each file is written under a staging name beside its target and all of them are moved into
/// place together once every one is complete, so an image whose outputs fail half-way leaves
/// none behind.
public final class ImageOutputFiles {
    /// The output folder.
    public let folder: URL
    /// The image's base name.
    public let stem: String
    private var staged: [(staging: URL, target: URL)] = []
    private let token = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    /// The files of image `stem` in `folder`.
    public init(folder: URL, stem: String) {
        self.folder = folder
        self.stem = stem
    }

    /// Where a file ends up: `<folder>/<stem><suffix>`.
    public func target(_ suffix: String) -> URL {
        folder.appendingPathComponent(stem + suffix)
    }

    /// The URL to write the `suffix` file to (a staging name that keeps the suffix, so writers
    /// that choose the format by extension still do); the folder is created with the first file.
    public func url(_ suffix: String) throws(PipelineError) -> URL {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw .cannotWrite(path: folder.path, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        let staging = folder.appendingPathComponent(".staged-\(token)-\(stem)\(suffix)")
        staged.append((staging, target(suffix)))
        return staging
    }

    /// Moves every written file into place.
    public func commit() throws(PipelineError) {
        for (staging, target) in staged where FileManager.default.fileExists(atPath: staging.path) {
            guard rename(staging.path, target.path) == 0 else {
                let reason = String(cString: strerror(errno))
                discard()
                throw PipelineError.cannotWrite(path: target.path, reason: reason)
            }
        }
        staged = []
    }

    /// Removes every staged file.
    public func discard() {
        for (staging, _) in staged { try? FileManager.default.removeItem(at: staging) }
        staged = []
    }
}
