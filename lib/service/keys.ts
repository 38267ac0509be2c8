// Customer keys: master keys a project creates (KMS keys on AWS, key files locally) to encrypt its
// volumes' backups under. A key belongs to the project that created it; only that project lists it or
// names it on a volume.
import type { KeyInfo, KeyService } from '../engine/ports.ts';
import { ServiceError, badRequest } from './errors.ts';
import { checkProjectId } from './ids.ts';
import { checkText } from './validation.ts';

export interface CreateKeyRequest {
  /** `alias/<name>`: 1-250 of [A-Za-z0-9/_-] after the prefix. */
  alias?: string;
  description?: string;
}

const ALIAS_PATTERN = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
/** Aliases KMS keeps for AWS keys, and the ones this service names its own keys with. */
const RESERVED_ALIAS_PREFIXES = ['alias/aws/', 'alias/openvbs'];
export const KEY_DESCRIPTION_MAX = 255;

/** checkAlias's rules as one JSON Schema pattern (ECMA-262), for the API document. */
export const KEY_ALIAS_PATTERN = '^alias/(?![Aa][Ww][Ss]/|[Oo][Pp][Ee][Nn][Vv][Bb][Ss])[A-Za-z0-9/_-]{1,250}$';

function checkAlias(alias: string): void {
  if (!ALIAS_PATTERN.test(alias)) throw badRequest('OpenVBS.1201', 'alias must be "alias/" followed by 1-250 letters, digits, "/", "_" or "-"');
  const reserved = RESERVED_ALIAS_PREFIXES.find((prefix) => alias.toLowerCase().startsWith(prefix));
  if (reserved) throw badRequest('OpenVBS.1201', `aliases starting with ${reserved} are reserved`);
}

const aliasInUse = (alias: string) => new ServiceError(409, 'OpenVBS.1202', `alias ${alias} is already in use`);

export class KeyAdminService {
  private readonly keys: KeyService;

  constructor(keys: KeyService) {
    this.keys = keys;
  }

  async create(projectId: string, req: CreateKeyRequest = {}): Promise<KeyInfo> {
    checkProjectId(projectId);
    if (req.alias !== undefined) checkAlias(req.alias);
    checkText(req.description, 'OpenVBS.1201', { what: 'key description', max: KEY_DESCRIPTION_MAX });
    const { alias, description } = req;
    if (alias !== undefined && (await this.keys.describeKey(alias))) throw aliasInUse(alias);
    try {
      return await this.keys.createKey({ owner: projectId, ...(alias !== undefined ? { alias } : {}), ...(description !== undefined ? { description } : {}) });
    } catch (err) {
      // Another request took the alias since the check above.
      if (alias !== undefined && (await this.keys.describeKey(alias))) throw aliasInUse(alias);
      throw err;
    }
  }

  /** The project's keys, oldest first. */
  async list(projectId: string): Promise<KeyInfo[]> {
    checkProjectId(projectId);
    return this.keys.listKeys(projectId);
  }
}
