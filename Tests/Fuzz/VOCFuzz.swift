// libFuzzer target: PASCAL VOC annotation XML (Scripts/fuzz.sh).
import DinoDiscovery
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVOC(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? VOCAnnotation(data: Data(bytes: data, count: size), path: "fuzz.xml")
    return 0
}
