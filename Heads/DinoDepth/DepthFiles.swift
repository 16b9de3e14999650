import DinoImage
import DinoTensor
import Foundation

/// Depth maps on disk: float `.npy` (metres, or the model's relative values) and 16-bit grey
/// PNG (integers = depth x `depthScale`: millimetres for NYU with 1000, KITTI's 256).
public enum DepthFile {
    /// Extensions `read` accepts.
    public static let extensions: Set<String> = ["npy", "png"]

    /// Reads a depth map: `.npy` of shape `[H, W]`, `[1, H, W]` or `[1, 1, H, W]`, values as stored;
    /// or a grey PNG (16- or 8-bit), values divided by `depthScale`. 0 in a PNG means "no
    /// measurement" and stays 0 (below any minimum depth, so evaluation ignores it).
    public static func read(_ url: URL, depthScale: Float = 1000) throws(DepthError) -> DepthMap {
        switch url.pathExtension.lowercased() {
        case "npy":
            let tensor: Tensor
            do {
                tensor = try NumpyFile.read(url)
            } catch {
                throw .tensorFile(error)
            }
            let leading = tensor.shape.dropLast(2)
            guard tensor.rank >= 2, tensor.rank <= 4, leading.allSatisfy({ $0 == 1 }) else {
                throw .cannotReadDepth(path: url.path, reason: "array of shape \(tensor.shape) is not a map [H, W], [1, H, W] or [1, 1, H, W]")
            }
            let (h, w) = (tensor.shape[tensor.rank - 2], tensor.shape[tensor.rank - 1])
            return DepthMap(width: w, height: h, values: tensor.scalars)
        case "png":
            guard depthScale > 0, depthScale.isFinite else {
                throw .cannotReadDepth(path: url.path, reason: "the depth scale must be positive, got \(depthScale)")
            }
            let image: GreyImage
            do {
                image = try ImageIO.readGrey(url)
            } catch {
                throw .cannotReadDepth(path: url.path, reason: error.description)
            }
            return DepthMap(width: image.width, height: image.height, values: image.samples.map { Float($0) / depthScale })
        default:
            throw .cannotReadDepth(path: url.path, reason: "unsupported extension '.\(url.pathExtension)'; use a 16-bit grey .png or a float .npy")
        }
    }

    /// The ground-truth map of `image` in `folder`: `<stem>.png`, else `<stem>.npy`, never the image
    /// itself (an image folder may be its own ground-truth folder).
    public static func groundTruth(for image: URL, in folder: URL) throws(DepthError) -> URL {
        let stem = image.deletingPathExtension().lastPathComponent
        for ext in ["png", "npy"] {
            let url = folder.appendingPathComponent("\(stem).\(ext)")
            if url.standardizedFileURL != image.standardizedFileURL, FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw .cannotReadDepth(path: folder.appendingPathComponent(stem).path, reason: "no ground truth <name>.png or <name>.npy for \(image.lastPathComponent)")
    }

    /// The predicted map of `stem` in `folder`, as `dino depth predict` writes it:
    /// `<stem>.depth.npy`, `<stem>.npy` or `<stem>.depth16.png`, in that order.
    public static func prediction(_ stem: String, in folder: URL) throws(DepthError) -> URL {
        for name in ["\(stem).depth.npy", "\(stem).npy", "\(stem).depth16.png"] {
            let url = folder.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw .cannotReadDepth(path: folder.appendingPathComponent(stem).path, reason: "no prediction <name>.depth.npy, <name>.npy or <name>.depth16.png")
    }

    /// The depth maps (`.png`, `.npy`) in `folder`, sorted by path.
    public static func maps(in folder: URL) throws(DepthError) -> [URL] {
        let items: [URL]
        do {
            items = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        } catch {
            throw .cannotReadDepth(path: folder.path, reason: error.localizedDescription)
        }
        return items.filter { extensions.contains($0.pathExtension.lowercased()) }.sorted { $0.path < $1.path }
    }

    /// Writes `map` as float32 `.npy` `[H, W]`, atomically.
    public static func writeNumpy(_ map: DepthMap, to url: URL) throws(DepthError) {
        do {
            try NumpyFile.write(map.tensor, to: url)
        } catch {
            throw .cannotWrite(path: url.path, reason: error.description)
        }
    }

    /// Writes `map` as a 16-bit grey PNG of `round(value x depthScale)` clamped to 0...65535
    /// (NaN becomes 0, "no value"), atomically.
    public static func writePNG16(_ map: DepthMap, to url: URL, depthScale: Float = 1000) throws(DepthError) {
        guard depthScale > 0, depthScale.isFinite else { throw .cannotWrite(path: url.path, reason: "the depth scale must be positive") }
        let samples = map.values.map { v -> UInt16 in
            guard !v.isNaN else { return 0 }
            return UInt16(min(max((v * depthScale).rounded(), 0), 65535))
        }
        do {
            try ImageIO.writeGrey16PNG(samples, width: map.width, height: map.height, to: url)
        } catch {
            throw .cannotWrite(path: url.path, reason: error.description)
        }
    }
}

extension DepthMap {
    /// The map as a colour picture: near warm and far cool (turbo) or near bright (inferno,
    /// viridis, gray), whichever way the values run; values outside `range` (default: the
    /// map's finite range) are clamped, NaN is black.
    public func colored(_ colormap: Colormap = .turbo, kind: DepthKind, range: ClosedRange<Float>? = nil) -> RGBImage {
        let r = range ?? finiteRange ?? 0...1
        let span = r.upperBound - r.lowerBound
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for (i, v) in values.enumerated() where !v.isNaN {
            let t = span > 0 ? (min(max(v, r.lowerBound), r.upperBound) - r.lowerBound) / span : 0.5
            let c = colormap.color(kind.largerIsNearer ? t : 1 - t)
            pixels[i * 3] = c.0
            pixels[i * 3 + 1] = c.1
            pixels[i * 3 + 2] = c.2
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
