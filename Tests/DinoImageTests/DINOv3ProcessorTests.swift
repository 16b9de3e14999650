import DinoImage
import DinoTensor
import Foundation
import Testing

/// The DINOv3 preset against HF DINOv3ViTImageProcessor (torchvision backend), from
/// Scripts/make_dinov3_fixtures.py: released settings, SAT-493M statistics at 256 x 320, and
/// upsampling to 336 x 464.
@Suite("DINOv3 image processor")
struct DINOv3ProcessorTests {
    static let folder = ImageFixtures.root.appendingPathComponent("dinov3")

    @Test("pixel values equal HF's within 2e-6 (float32 sums in another order)", arguments: ["lvd1689m", "sat493m_256x320", "upsample_336x464"])
    func matchesHF(variant: String) throws {
        let processor = try DINOv3Processor.load(from: Self.folder.appendingPathComponent("\(variant).json"))
        if variant == "lvd1689m" { #expect(processor == .lvd1689m) }
        if variant.hasPrefix("sat493m") { #expect(processor.normalization == DINOv3Processor.sat493m.normalization) }
        let reference = try SafetensorsFile(url: Self.folder.appendingPathComponent("\(variant).safetensors"))
        for photo in reference.tensorNames {
            let file = try FileManager.default.contentsOfDirectory(atPath: ImageFixtures.photos.path).first { $0.hasPrefix(photo + ".") }
            let image = try ImageIO.read(ImageFixtures.photos.appendingPathComponent(try #require(file)))
            let ours = try Preprocessing.dinov3(processor).prepare(image, patchSize: 16).pixels
            let theirs = try reference.tensor(photo)
            #expect(ours.shape == theirs.shape)
            let worst = zip(ours.scalars, theirs.scalars).map { abs($0 - $1) }.max() ?? .infinity
            print("dinov3 processor \(variant) \(photo): max|diff| \(worst)")
            #expect(worst <= 2e-6, "\(variant) \(photo): max|diff| \(worst)")
        }
    }

    @Test("settings the processor does not have are errors naming the file")
    func refusesOtherSettings() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dinov3-processor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (text, reason) in [(#"{"resample": 3}"#, "bilinear"), (#"{"do_center_crop": true}"#, "do_center_crop"),
                               (#"{"size": {"shortest_edge": 224}}"#, "size"), (#"{"image_std": [0, 1, 1]}"#, "image_std")] {
            let url = directory.appendingPathComponent("preprocessor_config.json")
            try Data(text.utf8).write(to: url)
            #expect {
                try DINOv3Processor.load(from: url)
            } throws: { error in
                "\(error)".contains(reason) && "\(error)".contains(url.path)
            }
        }
    }
}
