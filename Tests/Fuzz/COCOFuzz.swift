// libFuzzer target: COCO instances JSON with the COCO20k file list (Scripts/fuzz.sh).
import DinoDiscovery
import Foundation

/// A file list naming image ids 1 to 3 (and a line without an id), as an unlinked temporary file.
let fileList: UnsafeMutablePointer<FILE>? = {
    guard let file = tmpfile() else { return nil }
    let text = "train2014/COCO_train2014_000000000001.jpg\ntrain2014/COCO_train2014_000000000002.jpg\nCOCO_3.jpg\nno-id.jpg\n"
    fputs(text, file)
    fflush(file)
    return file
}()

/// Writes the file list and reads one valid file before fuzzing starts (see ConfigFuzz.swift).
@_cdecl("LLVMFuzzerInitialize")
public func initializeCOCOFuzz(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let valid = Array(#"{"images": [{"id": 1}], "annotations": [{"image_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0}]}"#.utf8)
    _ = valid.withUnsafeBufferPointer { buffer in buffer.baseAddress.map { fuzzCOCO($0, buffer.count) } }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCOCO(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let list = fileList, let file = tmpfile() else { return 0 }
    defer { fclose(file) }
    guard fwrite(data, 1, size, file) == size, fflush(file) == 0 else { return 0 }
    _ = try? COCO20kDataset.load(annotations: URL(fileURLWithPath: "/proc/self/fd/\(fileno(file))"),
                                 fileList: URL(fileURLWithPath: "/proc/self/fd/\(fileno(list))"), imageRoot: URL(fileURLWithPath: "/images"))
    return 0
}
