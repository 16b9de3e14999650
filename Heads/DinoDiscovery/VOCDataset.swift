import DinoTensor
import Foundation

/// One object of a PASCAL VOC annotation.
public struct VOCObject: Sendable, Equatable {
    /// The class name.
    public var name: String
    /// The box in pixels, end excluded: VOC's 1-based inclusive `(xmin, ymin, xmax, ymax)`
    /// becomes `[xmin - 1, ymin - 1, xmax, ymax]`.
    public var box: BoundingBox
    /// `<truncated>` is 1.
    public var truncated: Bool
    /// `<difficult>` is 1.
    public var difficult: Bool

    /// An object from its class, box (end excluded) and flags.
    public init(name: String, box: BoundingBox, truncated: Bool, difficult: Bool) {
        self.name = name
        self.box = box
        self.truncated = truncated
        self.difficult = difficult
    }
}

/// A PASCAL VOC annotation file (`Annotations/<id>.xml`).
public struct VOCAnnotation: Sendable, Equatable {
    /// `<filename>`.
    public var filename: String
    /// The `<object>` elements, in order.
    public var objects: [VOCObject]

    /// Parses an annotation; `path` names the file in errors.
    public init(data: Data, path: String) throws(DiscoveryError) {
        let root = try XMLTree.parse(data, path: path)
        guard root.name == "annotation" else {
            throw .invalidAnnotation(file: path, key: "root element", expected: "<annotation>", actual: "<\(root.name)>")
        }
        guard let filename = root.child("filename")?.text, !filename.isEmpty else {
            throw .invalidAnnotation(file: path, key: "filename", expected: "the image file name", actual: "missing")
        }
        self.filename = filename
        var objects: [VOCObject] = []
        for (index, element) in root.children.filter({ $0.name == "object" }).enumerated() {
            objects.append(try Self.object(element, index: index, path: path))
        }
        self.objects = objects
    }

    private static func object(_ element: XMLTree, index: Int, path: String) throws(DiscoveryError) -> VOCObject {
        let object = "object[\(index)]"
        guard let name = element.child("name")?.text else {
            throw .invalidAnnotation(file: path, key: "\(object).name", expected: "a class name", actual: "missing")
        }
        guard let box = element.child("bndbox") else {
            throw .invalidAnnotation(file: path, key: "\(object).bndbox", expected: "xmin, ymin, xmax, ymax", actual: "missing")
        }
        func coordinate(_ key: String) throws(DiscoveryError) -> Int {
            // VOC coordinates are integers; LOST reads them with Python's int(), which rejects
            // "12.5", so a fractional coordinate is an error here too rather than silently rounded.
            guard let text = box.child(key)?.text else {
                throw .invalidAnnotation(file: path, key: "\(object).bndbox.\(key)", expected: "an integer pixel index", actual: "missing")
            }
            guard let value = Int(text) else {
                throw .invalidAnnotation(file: path, key: "\(object).bndbox.\(key)", expected: "an integer pixel index", actual: "'\(text)'")
            }
            return value
        }
        let (xmin, ymin, xmax, ymax) = (try coordinate("xmin"), try coordinate("ymin"), try coordinate("xmax"), try coordinate("ymax"))
        guard xmin <= xmax, ymin <= ymax else {
            throw .invalidAnnotation(file: path, key: "\(object).bndbox", expected: "xmin <= xmax and ymin <= ymax",
                                     actual: "'\(xmin) \(ymin) \(xmax) \(ymax)'")
        }
        // ref: valeoai/LOST datasets.py extract_gt_VOC: VOC boxes are 1-based inclusive pixel
        // indices, so (1, W) covers the image, which is [0, W) here; only the min ends move.
        // The flags compare the text with "1", as LOST does; a missing flag is not "1".
        return VOCObject(name: name, box: BoundingBox(x0: xmin - 1, y0: ymin - 1, x1: xmax, y1: ymax),
                         truncated: element.child("truncated")?.text == "1", difficult: element.child("difficult")?.text == "1")
    }
}

/// PASCAL VOC's layout: `JPEGImages/<id>.jpg`, `Annotations/<id>.xml`,
/// `ImageSets/Main/<split>.txt` (one id a line).
public enum VOCDataset {
    // ref: valeoai/LOST datasets.py extract_gt_VOC (remove_hards) and main_lost.py
    // (`if gt_bbxs.shape[0] == 0 and args.no_hard: continue`).
    /// Loads `split` of the VOC folder `root`. By default every object is ground truth, as in
    /// LOST's published evaluation; `removeHard` drops truncated and difficult objects and leaves
    /// out the images with none left (LOST's `--no_hard`).
    public static func load(root: URL, split: String, removeHard: Bool = false) throws(DiscoveryError) -> DiscoveryDataset {
        let splitFile = root.appendingPathComponent("ImageSets/Main/\(split).txt")
        guard FileManager.default.fileExists(atPath: splitFile.path) else { throw .missingFile(path: splitFile.path) }
        let ids = try lines(of: splitFile, what: "split file")
        var dataset = DiscoveryDataset(name: "VOC \(split)\(removeHard ? " (no hard)" : "")", images: [], excluded: [], failures: [])
        for id in ids {
            do throws(DiscoveryError) {
                let annotationURL = try confined("Annotations/\(id).xml", in: root, listedIn: splitFile)
                guard FileManager.default.fileExists(atPath: annotationURL.path) else { throw .missingFile(path: annotationURL.path) }
                let data: Data
                do { data = try InputFile.contents(of: annotationURL) } catch { throw .unreadableFile(path: annotationURL.path, reason: error.detail) }
                let annotation = try VOCAnnotation(data: data, path: annotationURL.path)
                let objects = removeHard ? annotation.objects.filter { !$0.truncated && !$0.difficult } : annotation.objects
                if removeHard && objects.isEmpty {
                    dataset.excluded.append(id)
                    continue
                }
                dataset.images.append(GroundTruthImage(id: id, url: try confined("JPEGImages/\(id).jpg", in: root, listedIn: splitFile),
                                                       boxes: objects.map(\.box)))
            } catch {
                dataset.failures.append((id, error.description))
            }
        }
        return dataset
    }
}

/// The non-empty lines of the UTF-8 text file at `url` (a split file or file list), trimmed.
func lines(of url: URL, what: String) throws(DiscoveryError) -> [String] {
    let lines: [String]?
    do { lines = try InputFile.lines(of: url) } catch { throw .unreadableFile(path: url.path, reason: error.detail) }
    guard let lines else { throw .unreadableFile(path: url.path, reason: "cannot read the \(what) as UTF-8 text") }
    return lines
}

/// `entry`, a path a dataset list (`list`) gives relative to `root`, which must stay inside it.
func confined(_ entry: String, in root: URL, listedIn list: URL) throws(DiscoveryError) -> URL {
    do { return try InputFile.confined(entry, in: root, source: list.path) } catch { throw .unreadableFile(path: list.path, reason: error.detail) }
}
