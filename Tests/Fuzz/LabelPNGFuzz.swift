// libFuzzer target: label-map PNGs (chunk parsing, palette and grey index recovery) (Scripts/fuzz.sh).
import DinoSegmentation
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLabelPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    // Large declared sizes are refused by the pixel limit (tested elsewhere) or decoded at full
    // size: keep each run small.
    if bytes.count >= 24 {
        let width = bytes[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = bytes[20..<24].reduce(0) { $0 << 8 | Int($1) }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || pixels > 1 << 20 { return 0 }
    }
    _ = try? LabelMapFile.decode(bytes, name: "fuzz.png")
    return 0
}
