import DinoImage
import DinoLayers
import DinoTensor
import Foundation

/// A per-pixel class map: one byte per pixel, row-major; 255 marks pixels to ignore.
///
/// Bytes cap the number of classes at 255 (ADE20K has 150, VOC 21), as the datasets' own
/// 8-bit PNG masks do.
public struct LabelMap: Sendable, Equatable {
    /// The label of pixels that count for nothing (unlabelled, borders, padding).
    public static let ignoreIndex: UInt8 = 255

    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// `[height, width]` class indices.
    public var labels: [UInt8]

    /// A map from its size and labels; `labels.count` must be `width * height`.
    public init(width: Int, height: Int, labels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && labels.count == width * height, "\(labels.count) labels are not a \(width)x\(height) map")
        self.width = width
        self.height = height
        self.labels = labels
    }

    /// A map filled with one label.
    public init(width: Int, height: Int, filling label: UInt8) {
        self.init(width: width, height: height, labels: [UInt8](repeating: label, count: width * height))
    }

    /// The largest label that is not the ignore index, nil if every pixel is ignored.
    public var largestLabel: Int? {
        labels.lazy.filter { $0 != Self.ignoreIndex }.max().map(Int.init)
    }

    /// One class present in a map and its share of the map's pixels.
    public struct ClassShare: Sendable, Equatable {
        /// The class index.
        public var label: Int
        /// Pixels of that class.
        public var pixels: Int
        /// `pixels` over all pixels of the map (ignored ones included).
        public var fraction: Double
    }

    /// The classes present (the ignore index excluded), most pixels first.
    public var classShares: [ClassShare] {
        var counts = [Int](repeating: 0, count: 256)
        for label in labels { counts[Int(label)] += 1 }
        let present = (0..<Int(Self.ignoreIndex)).filter { counts[$0] > 0 }.sorted { counts[$0] > counts[$1] }
        return present.map { ClassShare(label: $0, pixels: counts[$0], fraction: Double(counts[$0]) / Double(max(labels.count, 1))) }
    }

    /// Checks that every label is below `classes` or the ignore index.
    public func validate(classes: Int, path: String) throws(SegmentationError) {
        if let bad = labels.first(where: { $0 != Self.ignoreIndex && Int($0) >= classes }) {
            throw .labelOutOfRange(path: path, label: Int(bad), classes: classes)
        }
    }

    /// ADE20K's convention: label 0 ("other") becomes the ignore index and every other label
    /// moves down by one; 255 stays ignored.
    ///
    /// ref: mmseg `LoadAnnotations(reduce_zero_label=True)`: `gt[gt == 0] = 255; gt = gt - 1;
    /// gt[gt == 254] = 255`.
    public func reducingZeroLabel() -> LabelMap {
        LabelMap(width: width, height: height, labels: labels.map { $0 == 0 || $0 == Self.ignoreIndex ? Self.ignoreIndex : $0 - 1 })
    }

    /// The map resized with nearest-neighbour sampling, as masks are resized for training
    /// (OpenCV `INTER_NEAREST`: source index `floor(x * W / W')`).
    public func resized(width newWidth: Int, height newHeight: Int) -> LabelMap {
        if newWidth == width && newHeight == height { return self }
        let xs = (0..<newWidth).map { min(Int(Double($0) * Double(width) / Double(newWidth)), width - 1) }
        var out = [UInt8](repeating: 0, count: newWidth * newHeight)
        for y in 0..<newHeight {
            let sy = min(Int(Double(y) * Double(height) / Double(newHeight)), height - 1)
            for x in 0..<newWidth { out[y * newWidth + x] = labels[sy * width + xs[x]] }
        }
        return LabelMap(width: newWidth, height: newHeight, labels: out)
    }

    /// The highest-scoring class of each pixel after bilinearly resizing logits `[K, h, w]`
    /// (align_corners False) to `height x width`; ties go to the lower class index, as
    /// `torch.argmax` does.
    ///
    /// Classes are resized a few at a time, so that large images with many classes never
    /// hold all `K * H * W` resized logits.
    public static func argmax(_ logits: Tensor, height: Int, width: Int) -> LabelMap {
        precondition(logits.rank == 3 && logits.shape[0] <= 255, "argmax needs [K, h, w] logits with K <= 255")
        let (k, h, w) = (logits.shape[0], logits.shape[1], logits.shape[2])
        let plane = height * width
        var best = [Float](repeating: -.infinity, count: plane)
        var labels = [UInt8](repeating: 0, count: plane)
        let group = 8
        for start in stride(from: 0, to: k, by: group) {
            let count = min(group, k - start)
            let part = Tensor(shape: [1, count, h, w], scalars: Array(logits.scalars[(start * h * w)..<((start + count) * h * w)]))
            let resized = resizeBilinear(part, height: height, width: width, alignCorners: false)
            for c in 0..<count {
                let base = c * plane
                for j in 0..<plane where resized.scalars[base + j] > best[j] {
                    best[j] = resized.scalars[base + j]
                    labels[j] = UInt8(start + c)
                }
            }
        }
        return LabelMap(width: width, height: height, labels: labels)
    }
}

/// Label map files: 8-bit PNGs holding class indices.
///
/// The image decoder (OpenCV) turns every PNG into RGB, so the index has to be recovered:
/// - 8-bit grey PNGs: the grey value is the index;
/// - 1, 2 and 4-bit grey PNGs: the decoder scales values to 0...255, which is undone;
/// - palette PNGs (Pascal VOC's `SegmentationClass`): the palette index is what matters, not
///   the colour; the `PLTE` chunk is read and each decoded colour mapped back to its palette
///   entry, which is exact as long as the entries used have distinct colours (VOC's do; an
///   ambiguous colour is an error);
/// - RGB PNGs whose three channels are equal everywhere (grey saved as RGB).
/// Colour masks, 16-bit PNGs and other formats (a JPEG would blur the indices) are refused.
public enum LabelMapFile {
    /// Reads a label PNG.
    public static func read(_ url: URL) throws(SegmentationError) -> LabelMap {
        let data: Data
        do {
            data = try InputFile.contents(of: url)
        } catch {
            throw .invalidLabelMap(path: url.path, reason: error.detail)
        }
        return try decode(data, name: url.path)
    }

    /// Decodes label PNG bytes; `name` is used in error messages.
    public static func decode(_ data: Data, name: String) throws(SegmentationError) -> LabelMap {
        guard ImageFormat.sniff(data) == .png else {
            throw .invalidLabelMap(path: name, reason: "not a PNG; label maps must be PNG files of class indices (a JPEG would blur them)")
        }
        let header = try PNGHeader(data, name: name)
        guard header.bitDepth <= 8 else {
            throw .invalidLabelMap(path: name, reason: "16-bit PNG; class indices must be stored as 8-bit grey or palette PNGs")
        }
        let rgb: RGBImage
        do {
            rgb = try ImageIO.decode(data, name: name)
        } catch {
            throw .image(error)
        }
        let count = rgb.width * rgb.height
        var labels = [UInt8](repeating: 0, count: count)
        switch header.colorType {
        case 3:
            guard let palette = header.palette else { throw .invalidLabelMap(path: name, reason: "palette PNG without a PLTE chunk") }
            var index: [UInt32: Int] = [:]
            var ambiguous = Set<UInt32>()
            for entry in 0..<(palette.count / 3) {
                let key = UInt32(palette[entry * 3]) << 16 | UInt32(palette[entry * 3 + 1]) << 8 | UInt32(palette[entry * 3 + 2])
                if index[key] == nil { index[key] = entry } else { ambiguous.insert(key) }
            }
            for i in 0..<count {
                let key = UInt32(rgb.pixels[i * 3]) << 16 | UInt32(rgb.pixels[i * 3 + 1]) << 8 | UInt32(rgb.pixels[i * 3 + 2])
                guard let entry = index[key], !ambiguous.contains(key) else {
                    let reason = index[key] == nil ? "a pixel's colour is not in the palette"
                        : "palette entries share the colour (\(key >> 16), \(key >> 8 & 255), \(key & 255)), so the class index of pixels of that colour is unknown; save the mask as an 8-bit grey PNG"
                    throw .invalidLabelMap(path: name, reason: reason)
                }
                labels[i] = UInt8(entry)
            }
        case 0, 4:
            let step = 255 / ((1 << header.bitDepth) - 1)
            for i in 0..<count { labels[i] = rgb.pixels[i * 3] / UInt8(step) }
        default:
            for i in 0..<count {
                let (r, g, b) = (rgb.pixels[i * 3], rgb.pixels[i * 3 + 1], rgb.pixels[i * 3 + 2])
                guard r == g, g == b else {
                    throw .invalidLabelMap(path: name, reason: "colour PNG; class indices must be stored as 8-bit grey or palette PNGs")
                }
                labels[i] = r
            }
        }
        return LabelMap(width: rgb.width, height: rgb.height, labels: labels)
    }

    /// Writes `map` as an 8-bit palette PNG whose pixel values are the class indices and whose
    /// palette holds `palette`'s colours, so that image viewers show colours and datasets tools
    /// read indices (the Pascal VOC format); atomically.
    public static func write(_ map: LabelMap, palette: SegmentationPalette = .standard, to url: URL) throws(SegmentationError) {
        let data = PalettePNG.encode(indices: map.labels, width: map.width, height: map.height, palette: palette.bytes)
        do {
            try AtomicFile.write(to: url) { try $0.write(contentsOf: data) }
        } catch {
            throw .cannotWrite(path: url.path, reason: "\(error)")
        }
    }
}

/// The parts of a PNG's chunk list the label reader needs (chunks are not compressed, so no
/// inflating is needed for them).
struct PNGHeader {
    var width = 0
    var height = 0
    var bitDepth = 0
    var colorType = 0
    /// `PLTE` bytes, three per entry.
    var palette: [UInt8]?

    init(_ data: Data, name: String) throws(SegmentationError) {
        let bytes = [UInt8](data)
        func be32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
        var offset = 8
        var sawHeader = false
        while offset + 8 <= bytes.count {
            let length = be32(offset)
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let start = offset + 8
            guard length >= 0, start + length + 4 <= bytes.count else {
                throw .invalidLabelMap(path: name, reason: "PNG chunk '\(type)' runs past the end of the file")
            }
            switch type {
            case "IHDR":
                guard length == 13 else { throw .invalidLabelMap(path: name, reason: "PNG header chunk of \(length) bytes") }
                width = be32(start)
                height = be32(start + 4)
                bitDepth = Int(bytes[start + 8])
                colorType = Int(bytes[start + 9])
                sawHeader = true
            case "PLTE":
                palette = Array(bytes[start..<(start + length)])
            case "IDAT", "IEND":
                offset = bytes.count
                continue
            default:
                break
            }
            offset = start + length + 4
        }
        guard sawHeader else { throw .invalidLabelMap(path: name, reason: "PNG without a header chunk") }
    }
}
