import { useState } from "react";
import { api } from "../api";
import type { Upload } from "../types";
import { ErrorNote } from "../ui/states";

export interface Reference {
  url: string;
  name: string;
  /** A local preview: the upload's URL needs the key, which an <img> cannot send. */
  preview: string;
}

const MAX_REFERENCES = 8;

/** Reference images: chosen with the file picker or dropped, uploaded at once. */
export function References({
  apiKey,
  references,
  onChange,
}: {
  apiKey: string;
  references: Reference[];
  onChange: (next: Reference[]) => void;
}) {
  const [uploading, setUploading] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [over, setOver] = useState(false);

  async function upload(files: FileList | File[]) {
    setError(null);
    const list = [...files].slice(0, MAX_REFERENCES - references.length);
    setUploading((n) => n + list.length);
    const added: Reference[] = [];
    for (const file of list) {
      try {
        const form = new FormData();
        form.append("file", file);
        const up = await api<Upload>("/v1/upload-image", { token: apiKey, form });
        added.push({ url: up.url, name: file.name, preview: URL.createObjectURL(file) });
      } catch (err) {
        setError(err);
      } finally {
        setUploading((n) => n - 1);
      }
    }
    onChange([...references, ...added]);
  }

  return (
    <fieldset
      className={`references ${over ? "over" : ""}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        void upload(e.dataTransfer.files);
      }}
      data-testid="references"
    >
      <legend>
        Reference images ({references.length}/{MAX_REFERENCES})
      </legend>
      <label>
        Add images (PNG, JPEG or WebP), or drop them here
        <input
          type="file"
          accept="image/png,image/jpeg,image/webp"
          multiple
          disabled={references.length >= MAX_REFERENCES}
          onChange={(e) => {
            if (e.target.files) void upload(e.target.files);
            e.target.value = "";
          }}
        />
      </label>
      {uploading > 0 && <p role="status">Uploading {uploading}…</p>}
      {error !== null && <ErrorNote error={error} />}
      <ul className="thumbs">
        {references.map((r) => (
          <li key={r.url} data-testid="reference">
            <img src={r.preview} alt={`Reference ${r.name}`} />
            <button
              type="button"
              className="link"
              aria-label={`Remove ${r.name}`}
              onClick={() => onChange(references.filter((x) => x.url !== r.url))}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
    </fieldset>
  );
}
