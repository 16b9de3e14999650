import DinoImage
import DinoTensor
import Foundation
import Testing

enum ImageFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let photos = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Examples/images")
    static func format(_ name: String) -> URL { root.appendingPathComponent("formats").appendingPathComponent(name) }
    static func preprocess(_ name: String) -> URL { root.appendingPathComponent("preprocess").appendingPathComponent(name) }
}

@Suite("Image decoding and encoding")
struct ImageIOTests {
    /// Valid files and the largest per-value difference allowed from the expected decode:
    /// 0 for lossless formats; JPEGs were decoded by Pillow's libjpeg-turbo 3, ours is Debian's.
    static let valid: [(String, Int)] = [
        ("rgb.png", 0), ("gray.png", 0), ("rgba.png", 0), ("gray16.png", 0), ("rgb16.png", 0), ("palette.png", 0),
        ("photo.webp", 0), ("photo.bmp", 0), ("photo.tiff", 0),
        ("photo.jpg", 4), ("exif_rotate6.jpg", 4), ("exif_rotate3.jpg", 4), ("cmyk.jpg", 8),
    ]

    @Test("every format decodes to the expected 8-bit RGB", arguments: valid)
    func decodes(name: String, tolerance: Int) throws {
        let image = try ImageIO.read(ImageFixtures.format(name))
        let expected = try NumpyFile.read(ImageFixtures.format(name + ".rgb.npy"))
        #expect([image.height, image.width, 3] == expected.shape, "\(name): \(image.width)x\(image.height)")
        guard [image.height, image.width, 3] == expected.shape else { return }
        var worst = 0
        for (a, b) in zip(image.pixels, expected.scalars) { worst = max(worst, abs(Int(a) - Int(b))) }
        print("decode \(name): max difference \(worst) grey levels")
        #expect(worst <= tolerance, "\(name): max difference \(worst) > \(tolerance)")
    }

    @Test("broken files are typed errors naming the file", arguments: [
        "truncated.jpg", "truncated.png", "not_an_image.jpg", "empty.png", "header_only.png",
    ])
    func rejects(name: String) throws {
        let url = ImageFixtures.format(name)
        do {
            _ = try ImageIO.read(url)
            Issue.record("\(name) decoded")
        } catch {
            #expect(error.description.hasPrefix(url.path), "\(error)")
            switch (name, error) {
            case ("not_an_image.jpg", .notAnImage), ("empty.png", .notAnImage): break
            case ("truncated.jpg", .corrupt), ("truncated.png", .corrupt), ("header_only.png", .corrupt), ("header_only.png", .tooLarge): break
            default: Issue.record("\(name): unexpected error \(error)")
            }
        }
    }

    @Test("a missing file is a read error")
    func missing() {
        #expect(throws: ImageError.self) { try ImageIO.read(URL(fileURLWithPath: "/nonexistent/x.png")) }
    }

    @Test("PNG round trips exactly, JPEG closely; bad targets fail cleanly")
    func writes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dino-img-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = try ImageIO.read(ImageFixtures.format("rgb.png"))
        let png = folder.appendingPathComponent("a.png")
        try ImageIO.write(image, to: png)
        #expect(try ImageIO.read(png) == image)
        let jpg = folder.appendingPathComponent("a.jpg")
        try ImageIO.write(image, to: jpg, jpegQuality: 95)
        let back = try ImageIO.read(jpg)
        let meanError = zip(back.pixels, image.pixels).map { abs(Double($0) - Double($1)) }.reduce(0, +) / Double(image.pixels.count)
        #expect(meanError < 3)
        #expect(throws: ImageError.self) { try ImageIO.write(image, to: folder.appendingPathComponent("a.gif")) }
        #expect(throws: ImageError.self) { try ImageIO.write(image, to: folder.appendingPathComponent("missing/a.png")) }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == ["a.jpg", "a.png"], "no partial files")
    }
}

@Suite("Preprocessing parity with the HF image processor and Pillow")
struct PreprocessingParityTests {
    static let photos = ["astronaut", "camera", "coffee", "rocket"]

    @Test("bicubic resizing equals Pillow's", arguments: photos + ["chelsea"])
    func resize(photo: String) throws {
        let name = photo == "chelsea" ? "resize_up.chelsea.png" : "resize.\(photo).png"
        let reference = try ImageIO.read(ImageFixtures.preprocess(name))  // lossless PNG of Pillow's result
        let expected = Tensor(shape: [reference.height, reference.width, 3], scalars: reference.pixels.map(Float.init))
        let ext = photo == "rocket" ? "jpg" : "png"
        let image = try ImageIO.read(ImageFixtures.photos.appendingPathComponent("\(photo).\(ext)"))
        let resized = image.resized(width: expected.shape[1], height: expected.shape[0])
        var differing = 0, worst = 0
        for (a, b) in zip(resized.pixels, expected.scalars) {
            let d = abs(Int(a) - Int(b))
            if d > 0 { differing += 1 }
            worst = max(worst, d)
        }
        print("resize \(photo) -> \(expected.shape[1])x\(expected.shape[0]): \(differing) of \(resized.pixels.count) values differ from Pillow, max \(worst)")
        #expect(worst == 0, "\(photo): \(differing) values differ from Pillow's, by up to \(worst) levels")
    }

    /// The cases of `resize/manifest.json`: Pillow's results on sizes that need each pass order.
    static let orderCases: [String] = {
        guard let data = try? Data(contentsOf: ImageFixtures.root.appendingPathComponent("resize/manifest.json")),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = root["cases"] as? [[String: Any]] else { return [] }
        return cases.compactMap { $0["name"] as? String }
    }()

    /// The manifest entry of case `name`.
    func orderCase(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: ImageFixtures.root.appendingPathComponent("resize/manifest.json"))
        let cases = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["cases"] as? [[String: Any]] ?? []
        return try #require(cases.first { $0["name"] as? String == name })
    }

    @Test("resizing runs Pillow's passes in Pillow's order: 0 levels on sizes that need each order", arguments: orderCases)
    func passOrder(name: String) throws {
        #expect(Self.orderCases.count == 8)
        let entry = try orderCase(name)
        let photo = try #require(entry["image"] as? String)
        var image = try ImageIO.read(ImageFixtures.photos.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(photo))
        if let box = entry["crop_box_xyxy"] as? [Int] {
            image = image.cropped(x: box[0], y: box[1], width: box[2] - box[0], height: box[3] - box[1])
        }
        let size = try #require(entry["to_wh"] as? [Int])
        let expected = try ImageIO.read(ImageFixtures.root.appendingPathComponent("resize/\(name).png"))
        let resized = image.resized(width: size[0], height: size[1])
        #expect(resized.width == expected.width && resized.height == expected.height)
        let differing = zip(resized.pixels, expected.pixels).filter { $0 != $1 }.count
        #expect(differing == 0, "\(name) (\(entry["pass_order"] ?? "")): \(differing) values differ from Pillow's")
    }

    @Test("--size HxW changing the aspect ratio gives Pillow's pixels exactly", arguments: orderCases)
    func sizePreset(name: String) throws {
        let entry = try orderCase(name)
        let size = try #require(entry["to_wh"] as? [Int])
        guard size[0] % 14 == 0, size[1] % 14 == 0 else { return }
        let photo = try #require(entry["image"] as? String)
        var image = try ImageIO.read(ImageFixtures.photos.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(photo))
        if let box = entry["crop_box_xyxy"] as? [Int] {
            image = image.cropped(x: box[0], y: box[1], width: box[2] - box[0], height: box[3] - box[1])
        }
        let prepared = try Preprocessing.size(height: size[1], width: size[0]).prepare(image, patchSize: 14)
        let expected = try ImageIO.read(ImageFixtures.root.appendingPathComponent("resize/\(name).png"))
        let mean = ImageNormalization.imagenet.mean, std = ImageNormalization.imagenet.std
        let plane = size[0] * size[1]
        var worst: Float = 0
        for c in 0..<3 {
            for i in 0..<plane {
                let level = (prepared.pixels.scalars[c * plane + i] * std[c] + mean[c]) * 255
                worst = max(worst, abs(level - Float(expected.pixels[i * 3 + c])))
            }
        }
        #expect(worst < 0.01, "\(name): --size \(size[1])x\(size[0]) differs from Pillow by up to \(worst) grey levels")
    }

    /// `(x * std + mean) * 255`, the grey level a normalised value stands for.
    func greyLevels(_ pixels: Tensor, mean: [Float], std: [Float]) -> [Float] {
        let plane = pixels.count / 3
        return pixels.scalars.enumerated().map { i, v in (v * std[i / plane] + mean[i / plane]) * 255 }
    }

    @Test("the classification preset matches HF pixel_values within one grey level", arguments: photos)
    func classification(photo: String) throws {
        let config = try ProcessorConfig.load(from: ImageFixtures.preprocess("preprocessor_config.json"))
        #expect(config == ProcessorConfig.dinov2)
        let reference = try SafetensorsFile(url: ImageFixtures.preprocess("classification.\(photo).safetensors"))
        let fast = try reference.tensor("pixel_values_fast")
        // Rebuild the PIL backend's output from its stored differences to the default backend.
        var slow = fast
        let indices = try reference.tensor("slow_minus_fast_index").scalars, levels = try reference.tensor("slow_minus_fast_levels").scalars
        let plane = fast.count / 3
        for (index, level) in zip(indices, levels) {
            let i = Int(index)
            slow.scalars[i] += level / (255 * config.std[i / plane])
        }
        let ext = photo == "rocket" ? "jpg" : "png"
        let image = try ImageIO.read(ImageFixtures.photos.appendingPathComponent("\(photo).\(ext)"))
        let ours = try Preprocessing.classification(config).prepare(image, patchSize: 14).pixels
        #expect(ours.shape == [3, 224, 224])
        let mine = greyLevels(ours, mean: config.mean, std: config.std)
        for (name, theirs) in [("torchvision (default)", fast), ("PIL", slow)] {
            let levels = greyLevels(theirs, mean: config.mean, std: config.std)
            let diffs = zip(mine, levels).map { abs($0 - $1) }
            let within = diffs.filter { $0 <= 1.001 }.count
            let fraction = Double(within) / Double(diffs.count)
            print(String(format: "classification %@ vs HF %@: %.4f%% within one grey level, max %.3f levels", photo, name, fraction * 100, diffs.max() ?? 0))
            #expect(fraction >= 0.99)
        }
        // Exact against the PIL backend (0 levels; the float arithmetic of the normalisation
        // differs by far less than a level). The torchvision backend's only differences are its
        // own one-level ones from PIL, at the indices the fixture lists.
        let known = Set(indices.map { Int($0) })
        let fastLevels = greyLevels(fast, mean: config.mean, std: config.std), slowLevels = greyLevels(slow, mean: config.mean, std: config.std)
        var offPIL = 0, offTorchvision = 0
        for i in mine.indices {
            if abs(mine[i] - slowLevels[i]) >= 0.01 { offPIL += 1 }
            let allowed: Float = known.contains(i) ? 1 : 0
            if abs(abs(mine[i] - fastLevels[i]) - allowed) >= 0.01 { offTorchvision += 1 }
        }
        #expect(offPIL == 0, "\(photo): \(offPIL) values are not PIL's grey level")
        #expect(offTorchvision == 0, "\(photo): \(offTorchvision) values differ from torchvision's other than by its \(known.count) known one-level differences")
    }
}

@Suite("Image size limits")
struct ImageLimitTests {
    @Test("headers declare the decoded size for every format", arguments: [
        "rgb.png", "gray16.png", "palette.png", "photo.webp", "photo.bmp", "photo.tiff", "photo.jpg", "cmyk.jpg",
    ])
    func headerSizes(name: String) throws {
        let url = ImageFixtures.format(name)
        let image = try ImageIO.read(url)
        // A limit one pixel below the image's size must refuse it before decoding, naming both.
        do {
            _ = try ImageIO.read(url, maxPixels: image.width * image.height - 1)
            Issue.record("\(name) passed a limit below its size")
        } catch {
            #expect(error == .tooLarge(path: url.path, width: image.width, height: image.height, limit: image.width * image.height - 1))
        }
        #expect(try ImageIO.read(url, maxPixels: image.width * image.height) == image)
    }

    @Test("a decompression bomb is refused from its header")
    func bomb() throws {
        // A PNG whose IHDR declares 60000 x 60000 pixels (3.6e9), with a tiny body.
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        png += [0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60, 8, 2, 0, 0, 0, 0, 0, 0, 0]
        do {
            _ = try ImageIO.decode(Data(png), name: "bomb.png")
            Issue.record("bomb decoded")
        } catch {
            #expect(error == .tooLarge(path: "bomb.png", width: 60000, height: 60000, limit: ImageIO.defaultMaxPixels))
            #expect(error.description.contains("60000x60000") && error.description.contains("\(ImageIO.defaultMaxPixels)"))
        }
    }
}

@Suite("Decoder limits and messages")
struct DecoderLimitTests {
    /// A PNG declaring `width x height` RGB pixels, with a little image data.
    func bigPNG(width: UInt32, height: UInt32) -> Data {
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            return withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init) + typed
                + withUnsafeBytes(of: crc32(typed).bigEndian, Array.init)
        }
        let header = withUnsafeBytes(of: width.bigEndian, Array.init) + withUnsafeBytes(of: height.bigEndian, Array.init) + [8, 2, 0, 0, 0]
        // zlib stream of a few zero bytes (stored block): enough for the decoder to read the header.
        let idat: [UInt8] = [0x78, 0x01, 0x01, 0x04, 0x00, 0xFB, 0xFF, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x01]
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", idat) + chunk("IEND", []))
    }

    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    @Test("an image over the decoder's own pixel limit gets the same message as one over --max-pixels")
    func decoderPixelLimit() {
        // 60000 x 60000 = 3.6e9 pixels is under the 4e9 asked for, over OpenCV's 2^30.
        do {
            _ = try ImageIO.decode(bigPNG(width: 60000, height: 60000), name: "big.png", maxPixels: 4_000_000_000)
            Issue.record("decoded")
        } catch {
            #expect(error == .tooLarge(path: "big.png", width: 60000, height: 60000, limit: ImageIO.decoderMaxPixels))
            #expect(error.description.contains("exceeds the limit of 1073741824 pixels"), "\(error)")
        }
    }

    @Test("a side over the decoder's limit is refused from the header, naming that limit")
    func decoderSideLimit() {
        do {
            _ = try ImageIO.decode(bigPNG(width: 1 << 21, height: 1), name: "long.png")
            Issue.record("decoded")
        } catch {
            #expect(error == .tooLarge(path: "long.png", width: 1 << 21, height: 1, limit: ImageIO.defaultMaxPixels))
            #expect(error.description.contains("exceeds the limit of 1048576 pixels a side"), "\(error)")
        }
    }

    @Test("what libpng says about a broken PNG is in the error, not on stderr")
    func codecMessageInError() throws {
        let url = ImageFixtures.format("truncated.png")
        do {
            _ = try ImageIO.read(url)
            Issue.record("decoded")
        } catch {
            #expect(error.description.contains("libpng: "), "\(error)")
        }
    }
}

@Suite("Fuzzer findings")
struct FuzzerFindingsTests {
    @Test("a JPEG whose APP0 length is one byte off still has its 32822 x 12544 frame refused from the header")
    func jpegMarkerResync() throws {
        // Found by Scripts/fuzz.sh (image target, 512 MB allocation cap): the header walk stopped
        // at the stray byte that libjpeg skips, so the frame size went unchecked and OpenCV
        // allocated 1.2 GB for a 500-byte file.
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Corpus/image/oom-jpeg-segment-length-off-by-one.jpg")
        #expect(throws: ImageError.tooLarge(path: url.path, width: 32822, height: 12544, limit: 1 << 20)) {
            try ImageIO.read(url, maxPixels: 1 << 20)
        }
    }

    @Test("a JPEG without a frame header is refused before the decoder")
    func jpegWithoutFrame() {
        let data = Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xD9])
        #expect(throws: ImageError.corrupt(path: "x.jpg", format: "JPEG", reason: "no frame header before the image data")) {
            try ImageIO.decode(data, name: "x.jpg")
        }
    }

    @Test("a PNG header declaring 4294967295 x 4294967295 pixels is refused, not an overflow trap")
    func overflowingSize() throws {
        // Found by Scripts/fuzz.sh (image target): width x height overflowed Int.
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Corpus/image/crash-png-overflowing-size.png")
        do {
            _ = try ImageIO.read(url)
            Issue.record("decoded")
        } catch {
            #expect(error == .tooLarge(path: url.path, width: 4_294_967_295, height: 4_294_967_295, limit: ImageIO.defaultMaxPixels))
            #expect(error.description.contains("4294967295x4294967295"))
        }
    }
}
