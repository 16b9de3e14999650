import DinoTensor
import Foundation
import Synchronization

/// A one-line progress bar on standard error, drawn only when standard error is a terminal.
final class ProgressBar: Sendable {
    private let label: String
    private let enabled: Bool
    private let state = Mutex<(done: Int, total: Int, lastDraw: UInt64, drawn: Bool)>((0, 0, 0, false))
    private let start = DispatchTime.now().uptimeNanoseconds

    /// A bar for `total` steps (0 when unknown yet).
    init(label: String, total: Int = 0) {
        self.label = label
        enabled = isatty(STDERR_FILENO) != 0
        state.withLock { $0.total = total }
    }

    /// Marks `count` more steps done, with an optional note (the current file).
    func advance(_ count: Int = 1, note: String = "") {
        let (done, total) = state.withLock { s -> (Int, Int) in
            s.done += count
            return (s.done, s.total)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 && total > done ? String(format: " ETA %.0fs", Double(total - done) / rate) : ""
        draw(fraction: total > 0 ? Double(done) / Double(total) : 0,
             text: "\(done)/\(total) \(String(format: "%.1f", rate))/s\(eta) \(note)", force: done == total)
    }

    /// Shows download progress of one file.
    func bytes(_ file: String, done: Int64, total: Int64?) {
        let mb = Double(done) / 1_048_576
        if let total, total > 0 {
            draw(fraction: Double(done) / Double(total), text: String(format: "%@ %.1f / %.1f MB", file, mb, Double(total) / 1_048_576), force: done == total)
        } else {
            draw(fraction: 0, text: String(format: "%@ %.1f MB", file, mb), force: false)
        }
    }

    private func draw(fraction: Double, text: String, force: Bool) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let shouldDraw = state.withLock { s -> Bool in
            // At most 10 redraws a second.
            guard force || now - s.lastDraw > 100_000_000 else { return false }
            s.lastDraw = now
            s.drawn = true
            return true
        }
        guard shouldDraw else { return }
        let width = 30
        let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded())
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = "\r\u{1B}[2K\(label) [\(bar)] \(text)"
        FileHandle.standardError.write(Data(String(line.prefix(200)).utf8))
    }

    /// Ends the bar's line.
    func finish() {
        guard enabled, state.withLock({ $0.drawn }) else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Writes `value` as pretty-printed JSON with sorted keys, atomically.
func writeJSON<Value: Encodable>(_ value: Value, to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(value)
    try AtomicFile.write(to: url) { try $0.write(contentsOf: data) }
}
