import DinoDiscovery
import DinoTensor
import Foundation
import Testing

@Suite("CorLoc on VOC and COCO20k layouts against the Python reference")
struct CorLocTests {
    /// Scores the reference's predicted boxes on `dataset` and compares every image and the total.
    func expectReference(_ dataset: DiscoveryDataset, _ reference: JSONValue, _ setting: String) throws {
        let predictions = try #require(reference["predictions"]?.objectValue)
        let expected = try #require(reference[setting])
        var corloc = CorLoc()
        for image in dataset.images {
            let boxValues = predictions.first { $0.key == image.id }?.value.arrayValue?.compactMap(\.intValue)
            let box = try #require(boxValues, "\(image.id) has no predicted box")
            let record = corloc.add(id: image.id, predicted: BoundingBox(x0: box[0], y0: box[1], x1: box[2], y1: box[3]), groundTruth: image.boxes)
            let perImage = try #require(expected["images"]?[image.id], "\(setting): \(image.id) is not in the reference")
            #expect(perImage["counted"] == .bool(true), "\(setting): \(image.id) was evaluated, the reference skips it")
            #expect(perImage["correct"] == .bool(record.correct), "\(setting): \(image.id) correct \(record.correct)")
            // The reference IoU is torch's float32 value, so equality is exact.
            let iou = try #require(perImage["best_iou"]?.doubleValue)
            #expect(Double(record.bestIoU) == iou, "\(setting): \(image.id) IoU \(record.bestIoU), reference \(iou)")
        }
        #expect(corloc.evaluated == expected["counted"]?.intValue)
        #expect(corloc.found == expected["found"]?.intValue)
        #expect(abs(corloc.percentage - (expected["corloc"]?.doubleValue ?? -1)) < 1e-9, "\(setting): CorLoc \(corloc.percentage)")
    }

    @Test("VOC: all objects are ground truth by default (80 %), --no-hard removes truncated and difficult ones (50 %)")
    func voc() throws {
        let root = Fixtures.root.appendingPathComponent("voc")
        let reference = try Fixtures.json("voc/corloc_reference.json")
        let all = try VOCDataset.load(root: root, split: "trainval")
        #expect(all.images.map(\.id) == ["astronaut", "camera", "chelsea", "coffee", "rocket"])
        #expect(all.failures.isEmpty && all.excluded.isEmpty)
        try expectReference(all, reference, "default")
        // 1-based inclusive (1, 1, 200, 150) on a 226 x 150 image is [0, 0, 200, 150).
        #expect(all.images.first { $0.id == "chelsea" }?.boxes == [BoundingBox(x0: 0, y0: 0, x1: 200, y1: 150)])

        let noHard = try VOCDataset.load(root: root, split: "trainval", removeHard: true)
        #expect(noHard.excluded == ["camera"], "camera has only a truncated and a difficult object")
        #expect(noHard.images.first { $0.id == "astronaut" }?.boxes.count == 2)
        #expect(reference["no_hard"]?["images"]?["camera"]?["counted"] == .bool(false))
        try expectReference(noHard, reference, "no_hard")
    }

    @Test("VOC: a malformed annotation is a failure of that image, the others load")
    func vocFailures() throws {
        let dataset = try VOCDataset.load(root: Fixtures.root.appendingPathComponent("voc"), split: "all")
        #expect(dataset.images.map(\.id) == ["astronaut", "camera", "broken", "chelsea", "coffee", "rocket"])
        #expect(dataset.failures.map(\.id) == ["badbox"])
        #expect(dataset.failures.first?.reason.contains("object[0].bndbox.xmax' is '200.5', expected an integer pixel index") == true,
                "\(dataset.failures)")
        #expect(throws: DiscoveryError.missingFile(path: Fixtures.root.appendingPathComponent("voc/ImageSets/Main/test.txt").path)) {
            try VOCDataset.load(root: Fixtures.root.appendingPathComponent("voc"), split: "test")
        }
    }

    @Test("VOC annotations are read strictly")
    func vocAnnotation() throws {
        func parse(_ xml: String) throws(DiscoveryError) -> VOCAnnotation { try VOCAnnotation(data: Data(xml.utf8), path: "a.xml") }
        let ok = try parse("<annotation><filename> x.jpg </filename><object><name>cat</name><difficult>1</difficult>"
                           + "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object></annotation>")
        #expect(ok.filename == "x.jpg")
        #expect(ok.objects == [VOCObject(name: "cat", box: BoundingBox(x0: 0, y0: 1, x1: 10, y1: 20), truncated: false, difficult: true)])
        #expect(throws: DiscoveryError.invalidAnnotation(file: "a.xml", key: "object[0].bndbox.ymax", expected: "an integer pixel index", actual: "missing")) {
            try parse("<annotation><filename>x.jpg</filename><object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax></bndbox></object></annotation>")
        }
        #expect(throws: DiscoveryError.invalidAnnotation(file: "a.xml", key: "root element", expected: "<annotation>", actual: "<html>")) {
            try parse("<html></html>")
        }
        #expect(throws: DiscoveryError.self) { try parse("<annotation><filename>x.jpg</filename>") }
        #expect(throws: DiscoveryError.invalidAnnotation(file: "a.xml", key: "object[0].bndbox", expected: "xmin <= xmax and ymin <= ymax", actual: "'5 2 3 4'")) {
            try parse("<annotation><filename>x.jpg</filename><object><name>c</name><bndbox><xmin>5</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>")
        }
    }

    @Test("an annotation that is not UTF-8 is refused, not a trap in Foundation's XML parser (found by Scripts/fuzz.sh)")
    func nonUTF8Annotation() throws {
        let xml = Data("<annotation><filename>a.jpg</filename><s".utf8) + Data([0xFF, 0xFF]) + Data("ize>1</s".utf8) + Data([0xFF, 0xFF])
            + Data("ize></annotation>".utf8)
        #expect(throws: DiscoveryError.unreadableFile(path: "a.xml", reason: "not UTF-8 text (VOC annotations are UTF-8 XML)")) {
            try VOCAnnotation(data: xml, path: "a.xml")
        }
    }

    @Test("the annotation XML reader: references, CDATA, comments, attributes; a DOCTYPE and malformed markup are refused")
    func xmlReader() throws {
        func parse(_ xml: String) throws(DiscoveryError) -> VOCAnnotation { try VOCAnnotation(data: Data(xml.utf8), path: "a.xml") }
        let read = try parse("""
            <?xml version="1.0" encoding="utf-8"?>
            <!-- a comment --><annotation verified='yes'>
              <filename> a&amp;b&#x2E;jpg </filename>
              <object><name><![CDATA[c<at>]]></name><pose/><bndbox><xmin>1</xmin><ymin>&#50;</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
            </annotation>
            """)
        #expect(read.filename == "a&b.jpg")
        #expect(read.objects == [VOCObject(name: "c<at>", box: BoundingBox(x0: 0, y0: 1, x1: 3, y1: 4), truncated: false, difficult: false)])
        for (xml, reason) in [
            ("<!DOCTYPE a [<!ENTITY e \"x\">]><annotation/>", "document type declarations are not read"),
            ("<annotation><filename>a</name></annotation>", "</name> closes <filename>"),
            ("<annotation><filename>&bogus;</filename></annotation>", "unknown reference '&bogus;'"),
            ("<annotation a=\"<\"/>", "'<' inside an attribute value"),
            ("<annotation/><annotation/>", "content after the root element"),
            ("<annotation>", "<annotation> is not closed"),
            (String(repeating: "<a>", count: 300), "elements nested deeper than 256"),
        ] {
            #expect(throws: DiscoveryError.self) { try parse(xml) }
            do { _ = try parse(xml) } catch { #expect(error.description.contains(reason), "\(xml.prefix(40)): \(error)") }
        }
    }

    @Test("a split file or file list naming a path outside the dataset is refused for that entry")
    func listedPathsStayInside() throws {
        // The dataset sits inside a scratch folder so that the file outside it is removed too.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("dino-voc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let root = scratch.appendingPathComponent("dataset")
        for sub in ["Annotations", "ImageSets/Main", "JPEGImages"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let annotation = "<annotation><filename>a.jpg</filename><object><name>c</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>"
        try Data(annotation.utf8).write(to: root.appendingPathComponent("Annotations/a.xml"))
        // The escaping id points at a real annotation outside the dataset.
        try Data(annotation.utf8).write(to: scratch.appendingPathComponent("outside.xml"))
        try Data("a\n../../outside\n".utf8).write(to: root.appendingPathComponent("ImageSets/Main/test.txt"))
        let voc = try VOCDataset.load(root: root, split: "test")
        #expect(voc.images.map(\.id) == ["a"])
        #expect(voc.failures.count == 1 && voc.failures.first?.reason.contains("not inside") == true, "\(voc.failures)")

        try Data(#"{"images": [{"id": 1}, {"id": 2}], "annotations": []}"#.utf8).write(to: root.appendingPathComponent("instances.json"))
        try Data("train2014/COCO_1.jpg\n../COCO_2.jpg\n".utf8).write(to: root.appendingPathComponent("list.txt"))
        let coco = try COCO20kDataset.load(annotations: root.appendingPathComponent("instances.json"),
                                           fileList: root.appendingPathComponent("list.txt"), imageRoot: root)
        #expect(coco.images.map(\.id) == ["1"])
        #expect(coco.failures.map(\.id) == ["../COCO_2.jpg"] && coco.failures.first?.reason.contains("not inside") == true)
    }

    @Test("COCO20k: crowd boxes are not ground truth, [x, y, w, h] rounds halves to even, unknown ids fail")
    func coco() throws {
        let root = Fixtures.root.appendingPathComponent("coco20k")
        let dataset = try COCO20kDataset.load(annotations: root.appendingPathComponent("instances_train2014_sel20k.json"),
                                              fileList: root.appendingPathComponent("coco_20k_filenames.txt"), imageRoot: root)
        #expect(dataset.images.map(\.id) == ["9", "25", "30"])
        #expect(dataset.images.first?.url.lastPathComponent == "COCO_train2014_000000000009.jpg")
        #expect(dataset.failures.map(\.id) == ["train2014/COCO_train2014_000000000077.jpg"])
        let reference = try Fixtures.json("coco20k/corloc_reference.json")
        for image in dataset.images {
            let expected = reference["ground_truth"]?[image.id]?.arrayValue?.map { $0.arrayValue?.compactMap(\.intValue) ?? [] }
            #expect(image.boxes.map(\.coordinates) == expected, "\(image.id)")
        }
        try expectReference(dataset, reference, "default")
    }

    @Test("IoU follows LOST: no +1 on widths, >= 0.5 counts, float32 with eps")
    func intersectionOverUnion() {
        let a = BoundingBox(x0: 0, y0: 0, x1: 10, y1: 10)
        #expect(a.intersectionOverUnion(a) == 1)
        #expect(a.intersectionOverUnion(BoundingBox(x0: 0, y0: 0, x1: 10, y1: 5)) == 0.5)
        #expect(a.intersectionOverUnion(BoundingBox(x0: 10, y0: 0, x1: 20, y1: 10)) == 0)
        // Height-1 boxes: 1 + 1e-7 is representable in float32, so the IoU is just below 1.
        let thin = BoundingBox(x0: 0, y0: 0, x1: 4, y1: 1)
        #expect(thin.intersectionOverUnion(thin) < 1)
        var corloc = CorLoc()
        corloc.add(id: "half", predicted: BoundingBox(x0: 0, y0: 0, x1: 10, y1: 5), groundTruth: [a])
        corloc.add(id: "none", predicted: a, groundTruth: [])
        #expect(corloc.records.map(\.correct) == [true, false])
        #expect(corloc.percentage == 50)
    }
}
