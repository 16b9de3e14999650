// libFuzzer target: the tar reader and WebDataset sample grouping (Scripts/fuzz.sh).
import DinoDataset
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTar(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // The reader takes a file (it reads with pread): the input goes to an unlinked temporary one.
    guard let file = tmpfile() else { return 0 }
    defer { fclose(file) }
    guard fwrite(data, 1, size, file) == size, fflush(file) == 0 else { return 0 }
    guard var samples = try? TarSampleReader(url: URL(fileURLWithPath: "/proc/self/fd/\(fileno(file))")) else { return 0 }
    for _ in 0..<64 {
        guard let sample = try? samples.next() else { break }
        if let member = sample.imageMember { _ = try? samples.reader.data(of: member, limit: 1 << 20) }
    }
    return 0
}
