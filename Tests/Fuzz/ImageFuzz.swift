// libFuzzer target: image format sniffing, header size checks and decoding (Scripts/fuzz.sh).
import DinoImage
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A small pixel limit keeps each run fast and exercises the header checks.
    if let image = try? ImageIO.decode(Data(bytes: data, count: size), name: "fuzz.img", maxPixels: 1 << 20) {
        _ = try? Preprocessing.resize(shortSide: 28).prepare(image, patchSize: 14)
    }
    return 0
}
