import DinoTensor
import Foundation

/// COCO20k: the 19,817 COCO train2014 images LOST and its predecessors evaluate on, given by a
/// file list (`coco_20k_filenames.txt`, lines such as `train2014/COCO_train2014_000000560992.jpg`)
/// and a COCO `instances` JSON holding their annotations.
public enum COCO20kDataset {
    // ref: valeoai/LOST datasets.py extract_gt_COCO (remove_iscrowd=True, Python's round())
    // and select_coco_20k (image id = the number after the last "_" of the file name).
    /// Loads the images of `fileList` (paths relative to `imageRoot`) with their boxes from the
    /// COCO instances file `annotations`. Crowd boxes are not ground truth; COCO's `[x, y, w, h]`
    /// becomes `[round(x), round(y), round(x + w), round(y + h)]`, rounding halves to even; a
    /// missing `iscrowd` is 0. Listed images missing from the annotations are failures.
    public static func load(annotations: URL, fileList: URL, imageRoot: URL) throws(DiscoveryError) -> DiscoveryDataset {
        for url in [annotations, fileList] where !FileManager.default.fileExists(atPath: url.path) {
            throw .missingFile(path: url.path)
        }
        let data: Data
        do { data = try InputFile.contents(of: annotations) } catch { throw .unreadableFile(path: annotations.path, reason: error.detail) }
        let document: Instances
        do {
            document = try JSONDecoder().decode(Instances.self, from: data)
        } catch {
            throw .unreadableFile(path: annotations.path, reason: "not a COCO instances file: \(error)")
        }
        let listed = try lines(of: fileList, what: "file list")
        let known = Set(document.images.map(\.id))
        var boxes: [Int: [BoundingBox]] = [:]
        for annotation in document.annotations where annotation.iscrowd != 1 {
            let b = annotation.bbox
            boxes[annotation.imageID, default: []].append(BoundingBox(
                x0: Int(b[0].rounded(.toNearestOrEven)), y0: Int(b[1].rounded(.toNearestOrEven)),
                x1: Int((b[0] + b[2]).rounded(.toNearestOrEven)), y1: Int((b[1] + b[3]).rounded(.toNearestOrEven))))
        }
        var dataset = DiscoveryDataset(name: "COCO20k", images: [], excluded: [], failures: [])
        for line in listed {
            let stem = (line as NSString).lastPathComponent.split(separator: ".").first.map(String.init) ?? ""
            guard let number = stem.split(separator: "_").last, let id = Int(number) else {
                dataset.failures.append((line, "\(fileList.path): '\(line)' has no image id (expected ..._<number>.jpg)"))
                continue
            }
            guard known.contains(id) else {
                dataset.failures.append((line, "\(annotations.path): no image with id \(id) (from '\(line)')"))
                continue
            }
            do throws(DiscoveryError) {
                dataset.images.append(GroundTruthImage(id: String(id), url: try confined(line, in: imageRoot, listedIn: fileList), boxes: boxes[id] ?? []))
            } catch {
                dataset.failures.append((line, error.description))
            }
        }
        return dataset
    }

    /// The parts of a COCO instances file that CorLoc needs.
    private struct Instances: Decodable {
        var images: [Image]
        var annotations: [Annotation]

        struct Image: Decodable {
            var id: Int
        }

        struct Annotation: Decodable {
            var imageID: Int
            var bbox: [Double]
            var iscrowd: Int

            enum CodingKeys: String, CodingKey {
                case imageID = "image_id"
                case bbox, iscrowd
            }

            init(from decoder: Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                imageID = try container.decode(Int.self, forKey: .imageID)
                bbox = try container.decode([Double].self, forKey: .bbox)
                iscrowd = try container.decodeIfPresent(Int.self, forKey: .iscrowd) ?? 0
                // Finite and far from Int's limits, so that rounding to pixels cannot trap.
                guard bbox.count == 4, bbox.allSatisfy({ $0.isFinite && abs($0) < 1e9 }) else {
                    throw DecodingError.dataCorruptedError(forKey: .bbox, in: container,
                                                           debugDescription: "bbox of image \(imageID) is \(bbox), expected [x, y, width, height]")
                }
            }
        }
    }
}
